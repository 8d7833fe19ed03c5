"""A fresh `vitrine serve` for a benchmark: its own data directory, a free port, one show,
and (when there are two CPUs) its own CPU, the load generator keeping the others."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VITRINE = [sys.executable, "-m", "appliance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A preexec_fn that keeps the child on `cpus` (None: anywhere)."""
    if not cpus:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def split_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None]:
    """One CPU for the server, the others for the load generator, when asked and possible."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return None, None
    return {cpus[0]}, set(cpus[1:])


def percentile(values: list[float], q: float) -> float:
    """The value below which a share `q` of `values` falls (nan when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class BenchServer:
    process: subprocess.Popen[bytes]
    port: int
    show: int
    data: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        shutil.rmtree(self.data, ignore_errors=True)


def start_server(
    env: dict[str, str] | None = None,
    cpus: set[int] | None = None,
    seed: bool = False,
    log: Path | None = None,
) -> BenchServer:
    """Start the server (with the demo shop when `seed`, its output to `log` when given)
    and one scheduled show; returns once it answers."""
    data = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    port = free_port()
    environ = {
        **os.environ,
        "VITRINE_STORAGE_DATA_DIR": str(data),
        "VITRINE_SERVER_PORT": str(port),
        "VITRINE_LOG_LEVEL": "WARNING",
        # Every simulated viewer comes from 127.0.0.1: no per-address caps.
        "VITRINE_LIMITS_ROOM_SOCKETS_PER_ADDRESS": "0",
        "VITRINE_LIMITS_WHEP_SESSIONS_PER_ADDRESS": "0",
        **(env or {}),
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [*VITRINE, *args], env=environ, cwd=ROOT, check=True, capture_output=True, text=True
        )
        return done.stdout

    if seed:
        cli("seed-demo")
    created = cli("shows", "create", "--title", "Bench", "--starts-at", "2030-01-01T10:00")
    with log.open("ab") if log is not None else open(os.devnull, "wb") as output:
        process = subprocess.Popen(
            [*VITRINE, "serve"],
            env=environ,
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=pinned(cpus),
        )
    server = BenchServer(process, port, int(json.loads(created)["id"]), data)
    time.sleep(3)
    return server
