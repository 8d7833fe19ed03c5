"""Whether this process may write its data directory, checked before anything opens it."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(data_dir: Path) -> str | None:
    """One line saying why `data_dir` cannot be written, or None when it can (or can be
    made). The usual case: a host folder bind-mounted on a container's /data, owned by
    root, while the server runs as an unprivileged user."""
    folder = data_dir
    while True:
        try:
            owner = folder.stat().st_uid
            break
        except FileNotFoundError:
            if folder == folder.parent:
                return None
            folder = folder.parent
        except OSError as exc:  # a folder on the way this user may not enter
            return f"cannot reach the data directory {data_dir}: {exc.strerror}."
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    if folder == data_dir:
        what = f"cannot write the data directory {data_dir}: it belongs"
    else:
        what = f"cannot make the data directory {data_dir}: {folder} belongs"
    return (
        f"{what} to uid {owner} and this process runs as uid {os.getuid()}. Give it to "
        f"this user (on the host: chown {os.getuid()}:{os.getgid()} FOLDER) or use a named "
        "volume."
    )
