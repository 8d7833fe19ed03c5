"""KPI figures: how many viewer reports a second the server takes, and how long one
show's KPIs take to compute.

1. Ingestion: starts `vitrine serve` (on its own CPU when there are two) behind a
   simulated proxy, then sends `POST /api/events` heartbeats from many viewers over
   keep-alive connections at rising target rates, for a fixed time each. Reports the
   rate achieved, the response time p50/p99 and the server's CPU.
2. Compute: `appliance.kpis.engine.compute` over 100,000 synthetic events of one show.

Writes both to docs/perf.md (section "kpis").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchserver import percentile, split_cpus, start_server
from perfdoc import write_section
from relay import proc_cpu

from appliance.kpis.engine import compute


async def sender(
    port: int, show: int, rate: float, until: float, times: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"show": show, "kind": "heartbeat"}).encode()
    interval = 1.0 / rate
    next_at = time.perf_counter()
    try:
        while time.time() < until:
            viewer = f"v_bench_{random.randrange(10**9):012d}"
            address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(256)}"
            request = (
                f"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {len(body)}\r\n"
                f"Cookie: vitrine_viewer={viewer}\r\nX-Forwarded-For: {address}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if length:
                await reader.readexactly(length)
            times.append((time.perf_counter() - started) * 1000)
            if status != 204:
                errors.append(status)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    finally:
        writer.close()


def load_step(
    port: int, show: int, rate: int, seconds: float, connections: int
) -> dict[str, float]:
    times: list[float] = []
    errors: list[int] = []

    async def run() -> None:
        until = time.time() + seconds
        await asyncio.gather(
            *(
                sender(port, show, rate / connections, until, times, errors)
                for _ in range(connections)
            )
        )

    asyncio.run(run())
    return {
        "rate": rate,
        "achieved": len(times) / seconds,
        "p50": percentile(times, 0.50),
        "p99": percentile(times, 0.99),
        "errors": len(errors),
    }


def ingestion(rates: list[int], seconds: float, connections: int) -> list[str]:
    server_cpus, load_cpus = split_cpus(True)
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)
    # Reports come "through a proxy", each from its own address, as phones do.
    server = start_server({"VITRINE_SERVER_PROXY_HEADERS": "true"}, server_cpus)
    lines = []
    try:
        for rate in rates:
            cpu0, t0 = proc_cpu(server.process.pid), time.monotonic()
            r = load_step(server.port, server.show, rate, seconds, connections)
            cpu = 100 * (proc_cpu(server.process.pid) - cpu0) / (time.monotonic() - t0)
            line = (
                f"| {rate} | {r['achieved']:.0f} | {r['p50']:.1f} / {r['p99']:.1f} | "
                f"{r['errors']:.0f} | {cpu:.0f} |"
            )
            print(line, flush=True)
            lines.append(line)
            time.sleep(1.5)  # the last batch is written
        with sqlite3.connect(server.data / "vitrine.sqlite3") as conn:
            stored = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        lines.append("")
        lines.append(f"Events stored at the end: {stored}.")
    finally:
        server.stop()
    return lines


def synthetic_show(n_events: int, seed: int = 7) -> list[dict[str, object]]:
    """A 60-minute show: viewers joining and leaving, heartbeats every 15 s, chat, hearts,
    clicks, carts and orders, until n_events."""
    rng = random.Random(seed)
    events: list[dict[str, object]] = []
    viewer = 0
    while len(events) < n_events:
        viewer += 1
        v = f"v_{viewer:08d}"
        start = rng.uniform(-300, 3000)
        stay = rng.expovariate(1 / 600)
        events.append(
            {
                "ts": start,
                "viewer": v,
                "kind": "join",
                "props": {
                    "device": rng.choice(["mobile", "mobile", "desktop"]),
                    "channel": "direct",
                },
            }
        )
        t = start + 15
        while t < start + stay and t < 3600:
            events.append({"ts": t, "viewer": v, "kind": "heartbeat", "props": {}})
            if rng.random() < 0.03:
                events.append({"ts": t, "viewer": v, "kind": "chat", "props": {}})
            if rng.random() < 0.05:
                events.append({"ts": t, "viewer": v, "kind": "like", "props": {"count": 3}})
            if rng.random() < 0.01:
                events.append(
                    {
                        "ts": t,
                        "viewer": v,
                        "kind": "add_to_cart",
                        "props": {"product": rng.randrange(1, 12), "quantity": 1, "price": 1990},
                    }
                )
            t += 15
        events.append({"ts": min(start + stay, 3600), "viewer": v, "kind": "leave", "props": {}})
        if rng.random() < 0.08:
            events.append(
                {
                    "ts": start + stay,
                    "viewer": v,
                    "kind": "purchase",
                    "props": {"order": f"o{viewer}", "amount": 4990},
                }
            )
    return events[:n_events]


def compute_time(n_events: int) -> list[str]:
    events = synthetic_show(n_events)
    best = float("inf")
    figures: dict[str, object] = {}
    for _ in range(3):
        started = time.perf_counter()
        figures = compute(events, 0.0, 3600.0, 15.0)
        best = min(best, time.perf_counter() - started)
    line = (
        f"`appliance.kpis.engine.compute` over {n_events:,} events of one 60-minute show "
        f"({figures['viewers']} viewers): {best * 1000:.0f} ms (best of 3)."
    )
    print(line, flush=True)
    return [line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="250,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header = (
        "| target reports/s | achieved/s | response ms p50 / p99 | not 204 | server CPU % |\n"
        "| --- | --- | --- | --- | --- |"
    )
    print(header, flush=True)
    rows = ingestion([int(r) for r in args.rates.split(",")], args.seconds, args.connections)
    computed = compute_time(args.events)
    body = "\n".join(
        [
            "## KPI events: ingestion and computing",
            "",
            f"`scripts/bench kpis --rates {args.rates} --seconds {args.seconds:.0f}`: "
            f"{args.connections} keep-alive connections send one heartbeat per",
            "`POST /api/events`, each from a different viewer and forwarded address, paced to",
            "the target rate, for the given time per step. The server has one CPU, the",
            "load generator the other. Every report is buffered and written in one batch a second.",
            "",
            header,
            *rows,
            "",
            *computed,
        ]
    )
    if not args.no_write:
        write_section("kpis", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
