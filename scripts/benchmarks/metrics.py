"""How long a /metrics scrape takes with viewers in the live room.

A real `vitrine serve` (metrics on, behind a token); the viewers are websocket
connections from a child process (scripts/benchmarks/room_gc.py's holder), each says
hello and stays. For each audience size: the time of 50 scrapes, one after another, as
the client sees it (p50, p95, max), and the size of the answer. Writes docs/perf.md.

    scripts/bench metrics [--viewers 0,2000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchserver import percentile, start_server
from perfdoc import write_section

TOKEN = "bench-metrics-token"
SCRAPES = 50


def scrape(url: str) -> tuple[float, int]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as r:
        body = r.read()
    return (time.perf_counter() - started) * 1000, len(body)


def measure(url: str, port: int, show: int, viewers: int) -> str:
    holder = None
    if viewers:
        holder = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("room_gc.py")),
                "--hold",
                str(viewers),
                "--port",
                str(port),
                "--show",
                str(show),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"ready", "the viewers did not connect"
        time.sleep(2)
    try:
        times, size = [], 0
        scrape(url + "/metrics")  # the first one warms up
        for _ in range(SCRAPES):
            took, size = scrape(url + "/metrics")
            times.append(took)
    finally:
        if holder is not None:
            assert holder.stdin is not None
            holder.stdin.close()
            holder.wait(timeout=60)
            time.sleep(2)
    return (
        f"| {viewers} | {percentile(times, 0.5):.1f} | {percentile(times, 0.95):.1f} | "
        f"{max(times):.1f} | {size / 1024:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="0,2000")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header = "| room connections | scrape ms p50 | p95 | max | answer KiB |"
    print(header + "\n| --- | --- | --- | --- | --- |", flush=True)
    server = start_server({"VITRINE_METRICS_TOKEN": TOKEN})
    lines = []
    try:
        for viewers in (int(v) for v in args.viewers.split(",")):
            line = measure(server.url, server.port, server.show, viewers)
            print(line, flush=True)
            lines.append(line)
    finally:
        server.stop()
    body = "\n".join(
        [
            "## Metrics: a /metrics scrape with the live room full",
            "",
            f"`scripts/bench metrics --viewers {args.viewers}`: a real `vitrine serve` with",
            "`metrics.token` set; the room's viewers are websockets from a child process. Each",
            f"row is {SCRAPES} scrapes one after another, timed by the client. The collector",
            "reads the server's own counters when the scrape comes (appliance/metrics), so",
            "its cost grows with rooms and shows, not with messages or packets.",
            "",
            header,
            "| --- | --- | --- | --- | --- |",
            *lines,
        ]
    )
    if not args.no_write:
        write_section("metrics", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
