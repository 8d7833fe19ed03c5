"""Server time of the viewer show page, measured against the real server.

Starts `vitrine serve` on a free port with a fresh data directory and the demo shop,
schedules a show with three products, then requests its page N times one after the
other. Reports the app's own time (its Server-Timing header) and the round trip seen by
the client, p50 and p95, and writes them to docs/perf.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfdoc import write_section

ROOT = Path(__file__).resolve().parents[2]
VITRINE = [sys.executable, "-m", "appliance"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="vitrine-bench-"))
    port = free_port()
    env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(data), "VITRINE_SERVER_PORT": str(port)}
    subprocess.run([*VITRINE, "seed-demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*VITRINE, "shows", "create", "--title", "Bench show", "--starts-at", "2030-01-01T18:00"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    show = json.loads(created.stdout)
    with sqlite3.connect(data / "vitrine.sqlite3") as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM products ORDER BY id LIMIT 3")]
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show["id"], pid, i) for i, pid in enumerate(ids)],
        )
    server = subprocess.Popen(
        [*VITRINE, "serve"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/shows/{show['id']}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        app_ms: list[float] = []
        total_ms: list[float] = []
        for i in range(20 + args.requests):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read()
                timing = r.headers["Server-Timing"]
            elapsed = (time.perf_counter() - t0) * 1000
            assert b"Bench show" in body
            if i >= 20:  # the first requests warm the caches
                app_ms.append(float(timing.split("dur=")[1]))
                total_ms.append(elapsed)
    finally:
        server.terminate()
        server.wait(timeout=15)
        shutil.rmtree(data, ignore_errors=True)
    rows = [
        ("app time (Server-Timing)", app_ms),
        ("round trip seen by the client", total_ms),
    ]
    lines = [
        "## Viewer show page",
        "",
        f"`scripts/bench pages --requests {args.requests}`: GET /shows/ID of a show with three",
        f"products, {args.requests} sequential requests after 20 warm-up requests, real server",
        "on loopback.",
        "Budget (DESIGN.md): server time under 20 ms.",
        "",
        "| measure | p50 ms | p95 ms | mean ms |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in rows:
        p50, p95, mean = percentile(values, 0.5), percentile(values, 0.95), statistics.mean(values)
        lines.append(f"| {name} | {p50:.2f} | {p95:.2f} | {mean:.2f} |")
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("pages", report)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
