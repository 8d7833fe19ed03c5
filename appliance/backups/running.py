"""Whether a server is serving a data directory: the lock it holds while it runs.

`vitrine serve` takes an exclusive lock on `server.lock` in the data directory for as
long as it runs; the kernel drops it when the process ends, however it ends, so a
crashed server never leaves a stale lock. A server of an older Vitrine (no lock) is
found through the `serving-url` file it writes, if its address still answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

LOCK_FILE = "server.lock"
SERVING_FILE = "serving-url"


class ServerLock:
    """Held by the serving process; `release` (or the process's end) lets go."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _locked(data_dir: Path) -> bool:
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _answers(data_dir: Path) -> str | None:
    try:
        url = (data_dir / SERVING_FILE).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname, port), timeout=1):
            return url
    except (OSError, ValueError):
        return None


def serving(data_dir: Path) -> str | None:
    """Why we believe a server is running on `data_dir`, or None."""
    if _locked(data_dir):
        return f"a Vitrine server holds {data_dir / LOCK_FILE}"
    url = _answers(data_dir)
    if url is not None:
        return f"a Vitrine server answers at {url} ({data_dir / SERVING_FILE})"
    return None
