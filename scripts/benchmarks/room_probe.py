"""A light, separate client process that measures chat delivery in the live room.

Locust's own probes share their process with hundreds of other users, so a probe's
timestamp on arrival waits for the rest of its process to be scheduled. This process only
holds a few connections, parses every frame and stamps arrival at once: what it measures
is the server's delivery time plus the kernel's, not the load generator's backlog.

    python room_probe.py --url ws://127.0.0.1:PORT/ws/shows/ID --seconds 30 [--clients 20]

Prints one JSON object: samples, p50, p95, p99, max (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import time
from urllib.parse import urlsplit

import websockets
from benchserver import percentile


async def listen(url: str, until: float, delays: list[float]) -> None:
    parts = urlsplit(url)
    origin = f"http://{parts.netloc}"
    cookie = f"vitrine_viewer=probe_{secrets.token_urlsafe(12)}"
    async with websockets.connect(
        url,
        origin=origin,
        additional_headers={"Cookie": cookie},
        compression=None,  # type: ignore[arg-type]
    ) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": None}))
        while (left := until - time.time()) > 0:
            try:
                frame = await asyncio.wait_for(ws.recv(), min(left, 1.0))
            except TimeoutError:
                continue
            now = time.time()
            for message in json.loads(frame):
                text = message.get("text") if message.get("type") == "chat" else None
                if isinstance(text, str) and text.startswith("t="):
                    delays.append((now - float(text[2:].split(" ", 1)[0])) * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    delays: list[float] = []
    until = time.time() + args.seconds
    await asyncio.gather(*(listen(args.url, until, delays) for _ in range(args.clients)))
    print(
        json.dumps(
            {
                "samples": len(delays),
                "p50": percentile(delays, 0.50),
                "p95": percentile(delays, 0.95),
                "p99": percentile(delays, 0.99),
                "max": max(delays, default=float("nan")),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
