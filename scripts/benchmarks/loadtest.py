"""Drives loadtests/locustfile.py against a fresh `vitrine serve` (see scripts/loadtest).

For each number of users: Locust spawns them (100 a second), they stay connected for the
measured window, then Locust stops. The figures: chat delivery time measured in the
clients (p50/p95/p99), connection failures, the server's CPU and RSS, and Locust's CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchserver import pinned, split_cpus, start_server
from perfdoc import write_section
from relay import proc_cpu, proc_rss_mb

ROOT = Path(__file__).resolve().parents[2]
SPAWN_RATE = 100


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants."""
    total = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            total += proc_cpu(current)
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total


def run_step(
    url: str,
    show: int,
    users: int,
    seconds: int,
    processes: int,
    server_pid: int,
    chat_rate: float,
    heart_rate: float,
    load_cpus: set[int] | None = None,
) -> dict[str, float]:
    spawn = users / SPAWN_RATE
    out = Path(tempfile.mkdtemp(prefix="vitrine-locust-"))
    env = {
        **os.environ,
        "VITRINE_LOAD_SHOW": str(show),
        "VITRINE_LOAD_USERS": str(users),
        "VITRINE_LOAD_CHAT_RATE": str(chat_rate),
        "VITRINE_LOAD_HEART_RATE": str(heart_rate),
    }
    command = [
        str(ROOT / ".venv" / "bin" / "locust"),
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        url,
        "-u",
        str(users),
        "-r",
        str(SPAWN_RATE),
        "-t",
        f"{int(spawn + seconds + 5)}s",
        "--csv",
        str(out / "run"),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--loglevel",
        "WARNING",
    ]
    if processes > 1:
        command += ["--processes", str(processes)]
    locust = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=pinned(load_cpus),
    )
    time.sleep(spawn + 5)  # everyone connected
    probe = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "room_probe.py"),
            "--url",
            url.replace("http", "ws", 1) + f"/ws/shows/{show}",
            "--seconds",
            str(seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(load_cpus),
    )
    cpu0, gen0, t0 = proc_cpu(server_pid), tree_cpu(locust.pid), time.monotonic()
    time.sleep(seconds)
    cpu1, gen1, t1 = proc_cpu(server_pid), tree_cpu(locust.pid), time.monotonic()
    rss = proc_rss_mb(server_pid)
    probed, _ = probe.communicate(timeout=30)
    try:
        clean = json.loads(probed)
    except ValueError:
        clean = {}
    locust.wait(timeout=seconds + 120)
    rows = {}
    with (out / "run_stats.csv").open() as fh:
        for row in csv.DictReader(fh):
            rows[(row["Type"], row["Name"])] = row
    shutil.rmtree(out, ignore_errors=True)
    delivery = rows.get(("WS", "chat delivery"), {})
    connect = rows.get(("WS", "connect"), {})

    def num(row: dict[str, str], key: str) -> float:
        try:
            return float(row.get(key) or "nan")
        except ValueError:
            return float("nan")

    return {
        "users": users,
        "probe_p50": float(clean.get("p50", "nan")),
        "probe_p95": float(clean.get("p95", "nan")),
        "probe_p99": float(clean.get("p99", "nan")),
        "probe_samples": float(clean.get("samples", 0)),
        "p50": num(delivery, "50%"),
        "p95": num(delivery, "95%"),
        "p99": num(delivery, "99%"),
        "samples": num(delivery, "Request Count"),
        "connected": num(connect, "Request Count") - num(connect, "Failure Count"),
        "server_cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "rss": rss,
        "locust_cpu": 100 * (gen1 - gen0) / (t1 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="500,1000,2000")
    parser.add_argument("--seconds", type=int, default=45, help="measured window per step")
    parser.add_argument("--processes", type=int, default=2, help="Locust worker processes")
    parser.add_argument("--chat-rate", type=float, default=20.0)
    parser.add_argument("--heart-rate", type=float, default=200.0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--share-cpus",
        action="store_true",
        help="let the server and the load generator share every CPU (default: one CPU for "
        "the server, the others for Locust and the probe)",
    )
    args = parser.parse_args()
    server_cpus, load_cpus = split_cpus(not args.share_cpus)
    server = start_server(cpus=server_cpus, seed=True)
    header = (
        "| users | connected | delivery ms, probe process: p50 / p95 / p99 (samples) | "
        "delivery ms, in Locust: p50 / p95 / p99 (samples) | server CPU % | server RSS MB | "
        "Locust CPU % |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = []
    try:
        print(header, flush=True)
        for users in [int(u) for u in args.users.split(",")]:
            r = run_step(
                server.url,
                server.show,
                users,
                args.seconds,
                args.processes,
                server.process.pid,
                args.chat_rate,
                args.heart_rate,
                load_cpus,
            )
            line = (
                f"| {r['users']:.0f} | {r['connected']:.0f} | {r['probe_p50']:.0f} / "
                f"{r['probe_p95']:.0f} / {r['probe_p99']:.0f} ({r['probe_samples']:.0f}) | "
                f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} ({r['samples']:.0f}) | "
                f"{r['server_cpu']:.0f} | {r['rss']:.0f} | {r['locust_cpu']:.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
            time.sleep(3)
    finally:
        server.stop()
    body = "\n".join(
        [
            "## Live room: websocket viewers (Locust)",
            "",
            f"`scripts/loadtest --users {args.users} --seconds {args.seconds} --processes "
            f"{args.processes}`: Locust users load the show page and its static files, report",
            "`join` and then a `heartbeat` every 15 s to `/api/events`, open the",
            f"room's websocket and stay; {args.chat_rate:.0f} chat messages/s and "
            f"{args.heart_rate:.0f} hearts/s across the room (10 % of users chat,",
            "everyone taps hearts). Delivery = time from a chat message's send (the sender's",
            "timestamp in the message) to its arrival, measured twice: by 20 connections of a",
            "separate probe process (scripts/benchmarks/room_probe.py) that only reads, and by",
            "5 % of the Locust users. Locust's figure includes its own backlog: a Locust process",
            "wakes hundreds of users per frame before a probe among them stamps the arrival.",
            "The server runs on one CPU, Locust and the probe on the other (`--share-cpus` to",
            "mix them): each side's CPU is shown.",
            "",
            header,
            *lines,
        ]
    )
    if not args.no_write:
        write_section("room", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
