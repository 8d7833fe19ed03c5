"""A light, separate client process that measures chat delivery in the live room.

Locust's own probes share their process with hundreds of other users, so a probe's
timestamp on arrival waits for the rest of its process to be scheduled. This process only
holds a few connections, parses every frame and stamps arrival at once: what it measures
is the server's delivery time plus the kernel's, not the load generator's backlog.

    python room_probe.py --url ws://127.0.0.1:PORT/ws/shows/ID --seconds 30 \
        [--clients 20] [--audience 2000]

It connects, waits until the room's viewer count reaches `--audience` (the load
generator's users are all in), lets it settle, prints `measuring N` and measures for
`--seconds`. Then it prints one JSON object: whether the audience came, the room's viewer
count at the start and end of the window, frames a client received per second, the
delivery samples, p50, p95, p99, max, and the longest stall of its own loop (milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import websockets
from benchserver import percentile


class Window:
    """When measuring starts (once the room holds the expected audience) and ends, and the
    room's own viewer count at both ends."""

    def __init__(self, audience: int, seconds: float, wait: float, settle: float) -> None:
        self.audience = audience
        self.seconds = seconds
        self.deadline = time.time() + wait
        self.settle = settle
        self.start: float | None = None
        self.viewers = 0
        self.viewers_at_start = 0
        self.reached = asyncio.Event()

    def saw_viewers(self, count: int) -> None:
        self.viewers = count
        if count >= self.audience and not self.reached.is_set():
            self.reached.set()

    async def open(self) -> None:
        """Wait for the audience (or the deadline), let it settle, then start."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reached.wait(), max(0.0, self.deadline - time.time()))
        await asyncio.sleep(self.settle)
        self.start = time.time()
        self.viewers_at_start = self.viewers
        print(f"measuring {self.viewers}", flush=True)

    @property
    def end(self) -> float:
        return (self.start or float("inf")) + self.seconds

    def measuring(self, now: float) -> bool:
        return self.start is not None and self.start <= now < self.end


async def listen(url: str, window: Window, delays: list[float], frames: list[bool]) -> None:
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
        pinging = asyncio.ensure_future(ping(ws))
        try:
            await read(ws, window, delays, frames)
        finally:
            pinging.cancel()


async def ping(ws: Any) -> None:
    """As the page does: a room closes connections silent for a minute."""
    while True:
        await asyncio.sleep(20)
        await ws.send(json.dumps({"type": "ping"}))


async def read(ws: Any, window: Window, delays: list[float], frames: list[bool]) -> None:
    while (left := window.end - time.time()) > 0:
        try:
            frame = await asyncio.wait_for(ws.recv(), min(left, 1.0))
        except TimeoutError:
            continue
        now = time.time()
        counting = window.measuring(now)
        frames.append(counting)
        for message in json.loads(frame):
            kind = message.get("type")
            if kind == "state":
                window.saw_viewers(message["viewers"])
            elif kind == "viewers":
                window.saw_viewers(message["count"])
            elif kind == "chat" and counting:
                text = message.get("text")
                if isinstance(text, str) and text.startswith("t="):
                    delays.append((now - float(text[2:].split(" ", 1)[0])) * 1000)


async def watch_self(window: Window, stalls: list[float]) -> None:
    """How late this process's own loop wakes in the window: a delay seen by the probe
    that its own stall explains is not the server's."""
    while time.time() < window.end:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        if window.measuring(time.time()):
            stalls.append((time.monotonic() - before - 0.01) * 1000)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--audience", type=int, default=0, help="viewers to wait for")
    parser.add_argument("--wait", type=float, default=300.0, help="longest wait for them")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after they came")
    args = parser.parse_args()
    delays: list[float] = []
    frames: list[bool] = []
    window = Window(args.audience, args.seconds, args.wait, args.settle)
    clients = [listen(args.url, window, delays, frames) for _ in range(args.clients)]
    stalls: list[float] = []
    await asyncio.gather(window.open(), watch_self(window, stalls), *clients)
    print(
        json.dumps(
            {
                "audience_reached": window.reached.is_set(),
                "viewers_at_start": window.viewers_at_start,
                "viewers_at_end": window.viewers,
                "frames_per_s": sum(frames) / args.clients / args.seconds,
                "samples": len(delays),
                "p50": percentile(delays, 0.50),
                "p95": percentile(delays, 0.95),
                "p99": percentile(delays, 0.99),
                "max": max(delays, default=float("nan")),
                "own_stall_max": max(stalls, default=float("nan")),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
