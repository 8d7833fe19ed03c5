"""Drives loadtests/locustfile.py against a fresh `vitrine serve` (see scripts/loadtest).

For each frame path and number of users: Locust spawns them (100 a second); once the room
holds them all, the window is measured; then Locust stops. The figures: chat delivery time
measured in the clients (p50/p95/p99), viewers the server dropped, the server's CPU, CPU
per frame, tick timing and RSS, and Locust's CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
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
WAIT = 60  # seconds beyond the nominal spawn time to wait for every user


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


HEALTH = re.compile(
    r"^(\S+ \S+),\d+ \S+ appliance.room.health: .*tick lag p50 ([\d.]+) ms p99 ([\d.]+) ms "
    r"max ([\d.]+) ms, fan-out p99 ([\d.]+) ms max ([\d.]+) ms, \d+ GC passes, longest ([\d.]+) ms"
)


def room_health(log: Path, since: float, until: float) -> dict[str, float]:
    """The worst of the server's own tick reports (appliance/room/health.py) logged in
    the window: how late its ticks woke, how long a fan-out took, the longest GC pass."""
    keys, groups = ("lag_p99", "lag_max", "fanout_p99", "gc_max"), (3, 4, 5, 7)
    reports = []
    for line in log.read_text(errors="replace").splitlines():
        match = HEALTH.match(line)
        at = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")) if match else 0
        if match and since <= at <= until + 1:
            reports.append([float(match.group(g)) for g in groups])
    return {k: max((r[i] for r in reports), default=float("nan")) for i, k in enumerate(keys)}


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
    log: Path | None = None,
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
        "-t",  # an upper bound: stopped once the window is measured
        f"{int(3 * spawn + WAIT + seconds + 30)}s",
        "--csv",
        str(out / "run"),
        "--reset-stats",  # Locust's figures: from the end of spawning on
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
    # The probe connects now and says when the room holds every user (spawning can take
    # longer than users / rate on a busy machine), plus a few seconds to settle.
    probe = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve().parent / "room_probe.py"),
            "--url",
            url.replace("http", "ws", 1) + f"/ws/shows/{show}",
            "--seconds",
            str(seconds),
            "--audience",
            str(users),
            "--wait",
            str(2 * spawn + WAIT),
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=pinned(load_cpus),
    )
    assert probe.stdout is not None
    started = probe.stdout.readline()  # "measuring N"
    cpu0, gen0, t0 = proc_cpu(server_pid), tree_cpu(locust.pid), time.monotonic()
    wall0 = time.time()
    time.sleep(seconds)
    cpu1, gen1, t1 = proc_cpu(server_pid), tree_cpu(locust.pid), time.monotonic()
    health = room_health(log, wall0, time.time()) if log is not None else {}
    rss = proc_rss_mb(server_pid)
    probed, _ = probe.communicate(timeout=30)
    locust.send_signal(signal.SIGTERM)  # stop the users; Locust writes its figures
    locust.wait(timeout=60)
    if not started.startswith("measuring"):
        print(f"room probe: {started.strip() or 'no answer'}", file=sys.stderr)
    try:
        clean = json.loads(probed)
    except ValueError:
        clean = {}
    rows = {}
    with (out / "run_stats.csv").open() as fh:
        for row in csv.DictReader(fh):
            rows[(row["Type"], row["Name"])] = row
    shutil.rmtree(out, ignore_errors=True)
    delivery = rows.get(("WS", "chat delivery"), {})
    dropped = rows.get(("WS", "dropped"), {})

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
        "frames_per_s": float(clean.get("frames_per_s", "nan")),
        "probe_stall": float(clean.get("own_stall_max", "nan")),
        "p50": num(delivery, "50%"),
        "p95": num(delivery, "95%"),
        "p99": num(delivery, "99%"),
        "samples": num(delivery, "Request Count"),
        # The room's own count (the probe's connections included), at both ends.
        "viewers_start": float(clean.get("viewers_at_start", "nan")),
        "viewers_end": float(clean.get("viewers_at_end", "nan")),
        "audience_reached": bool(clean.get("audience_reached")),
        "dropped": num(dropped, "Failure Count") if dropped else 0.0,
        "server_cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "rss": rss,
        "locust_cpu": 100 * (gen1 - gen0) / (t1 - t0),
        **health,
    }


def table_line(path: str, chat_rate: float, r: dict[str, float]) -> str:
    # CPU per frame: the server's CPU time over the frames its viewers got.
    per_frame = r["server_cpu"] * 1e4 / (r["viewers_start"] * r["frames_per_s"])
    viewers = f"{r['viewers_start']:.0f} / {r['viewers_end']:.0f}"
    if not r["audience_reached"]:
        viewers += " (not all users came)"
    return (
        f"| {path} | {r['users']:.0f} | {chat_rate:g} | {viewers} | {r['dropped']:.0f} | "
        f"{r['probe_p50']:.0f} / {r['probe_p95']:.0f} / {r['probe_p99']:.0f} "
        f"({r['probe_samples']:.0f}; {r['probe_stall']:.0f}) | "
        f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} ({r['samples']:.0f}) | "
        f"{r['server_cpu']:.0f} | {per_frame:.0f} | {r['lag_p99']:.0f} / "
        f"{r['lag_max']:.0f}, {r['fanout_p99']:.0f}, {r['gc_max']:.0f} | "
        f"{r['rss']:.0f} | {r['locust_cpu']:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", default="500,1000,2000")
    parser.add_argument("--seconds", type=int, default=45, help="measured window per step")
    parser.add_argument("--processes", type=int, default=2, help="Locust worker processes")
    parser.add_argument(
        "--chat-rate",
        default="20",
        help="chat messages/s across the room; several (comma-separated) show whether the "
        "cost stays flat as chat gets busier",
    )
    parser.add_argument("--heart-rate", type=float, default=200.0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument(
        "--section", default="room", help="the section of docs/perf.md to write (room)"
    )
    parser.add_argument(
        "--share-cpus",
        action="store_true",
        help="let the server and the load generator share every CPU (default: one CPU for "
        "the server, the others for Locust and the probe)",
    )
    parser.add_argument(
        "--paths",
        default="direct",
        help="comma-separated: 'direct' (frames written straight to each connection, the "
        "default) and/or 'queued' (every frame through Hypercorn's websocket stack), each "
        "on a fresh server, measured in the same run",
    )
    args = parser.parse_args()
    server_cpus, load_cpus = split_cpus(not args.share_cpus)
    header = (
        "| frame path | users | chat msg/s | viewers in the room, window start / end | dropped | "
        "delivery ms, probe process: p50 / p95 / p99 "
        "(samples; its own longest stall) | delivery ms, in Locust: p50 / p95 / p99 "
        "(samples) | server CPU % | "
        "server CPU µs per frame sent | server tick lag ms p99 / max, fan-out ms p99, "
        "longest GC ms | server RSS MB | Locust CPU % |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = []
    print(header, flush=True)
    for path in args.paths.split(","):
        if path not in ("direct", "queued"):
            parser.error(f"--paths: unknown path {path!r} (direct, queued)")
        direct = "true" if path == "direct" else "false"
        log = Path(tempfile.mkdtemp(prefix="vitrine-loadtest-")) / "server.log"
        server = start_server(
            env={"VITRINE_SERVER_WEBSOCKET_DIRECT_WRITES": direct, "VITRINE_LOG_LEVEL": "INFO"},
            cpus=server_cpus,
            seed=True,
            log=log,
        )
        try:
            for users in [int(u) for u in args.users.split(",")]:
                for chat_rate in [float(c) for c in args.chat_rate.split(",")]:
                    r = run_step(
                        server.url,
                        server.show,
                        users,
                        args.seconds,
                        args.processes,
                        server.process.pid,
                        chat_rate,
                        args.heart_rate,
                        load_cpus,
                        log,
                    )
                    line = table_line(path, chat_rate, r)
                    lines.append(line)
                    print(line, flush=True)
                    time.sleep(3)
        finally:
            server.stop()
            shutil.rmtree(log.parent, ignore_errors=True)
    body = "\n".join(
        [
            "## Live room: websocket viewers (Locust)"
            if "," not in args.chat_rate
            else "## Live room: the cost as chat gets busier (Locust)",
            "",
            f"`scripts/loadtest --users {args.users} --seconds {args.seconds} --processes "
            f"{args.processes} --paths {args.paths} --chat-rate {args.chat_rate}`: Locust "
            "users load the show page and",
            "its static files, report `join` and then a `heartbeat` every 15 s to",
            "`/api/events`, open the room's websocket and stay;",
            f"{args.chat_rate} chat messages/s and {args.heart_rate:.0f} hearts/s across "
            "the room (10 % of users chat, everyone taps hearts).",
            "",
            "- The window opens once the room's own viewer count says every user is in, plus",
            "  5 s: joining is not in it. 'Viewers in the room' is that count (the probe's 20",
            "  connections included) at the start and end of the window; 'dropped' counts",
            "  sockets the server closed on Locust users after spawning.",
            "- Delivery = time from a chat message's send (the sender's timestamp in the",
            "  message) to its arrival, measured twice: by 20 connections of a separate probe",
            "  process (scripts/benchmarks/room_probe.py) that only reads, and by 5 % of the",
            "  Locust users. Locust's figure includes its own backlog: a Locust process wakes",
            "  hundreds of users per frame before a probe among them stamps the arrival.",
            "  The probe also gives the longest stall of its own loop: a delay it explains is",
            "  the load generator's, not the server's.",
            "- 'direct' frames are built once per tick and written straight to each",
            "  connection's transport (appliance/room/wire.py); 'queued' frames go through",
            "  Hypercorn's websocket stack one connection at a time",
            "  (`server.websocket_direct_writes = false`), the path before this change.",
            "- CPU per frame = the server's CPU time over the frames its viewers received.",
            "  The tick figures are the server's own (appliance/room/health.py): how late its",
            "  100 ms tick woke, how long one fan-out took, and the longest garbage collector",
            "  pass, the worst 10 s report in the window.",
            "- The server runs on one CPU, Locust and the probe on the other (`--share-cpus` to",
            "  mix them): each side's CPU is shown, as % of one core.",
            "",
            header,
            *lines,
        ]
    )
    if not args.no_write:
        write_section(args.section, body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
