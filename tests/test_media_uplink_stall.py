"""The publisher's bandwidth estimate against a busy server (media/aiortc_glue.py's
KernelArrivals, media/uplink.py).

A real aiortc publisher sends from its own thread and event loop while the relay's loop
is blocked (six stalls of 300 ms), then kept busy (8 ms of other work between two turns
of the loop, for 4 s: it reads slower than packets come), as on a loaded machine: the
datagrams wait in the socket and are read late. With the arrival time Python reads them
at, the estimator took that for queueing on the link and cut the REMB it sends the
publisher down to its floor; with the time the kernel received them it does not.

The other side, a narrowing link still cutting the estimate, is
tests/test_networks.py::test_narrow_lossy_uplink_keeps_the_delay_bounded (end to end, a
900 kbit/s uplink in the network lab, where the queue is before the server's kernel)
and tests/test_media_uplink.py::test_a_standing_queue_cuts_the_estimate_under_what_arrives.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from aiortc import RTCPeerConnection, clock

from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings
from tests.media_helpers import CounterVideoTrack, answer, make_publisher

T = TypeVar("T")
STALL = 0.3  # seconds the relay's loop is blocked each time
STALLS = 6
BUSY = 4.0  # seconds of a loop too busy to keep up


class NoiseTrack(CounterVideoTrack):
    """A picture of noise: the encoder spends the whole bitrate it is allowed (a still
    counter costs it 20 kbit/s, too little for an estimate to mean anything)."""

    def _luma(self, n: int) -> bytes:
        return os.urandom(self.width * self.height)


class ThreadPeer:
    """An event loop on its own thread, for a peer the relay's stalls must not stop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    async def run(self, make: Callable[[], Awaitable[T]]) -> T:
        async def call() -> T:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), self.loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


async def wait_for(check: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def publish_and_stall() -> dict[str, Any]:
    """Publish for a while, stall and then busy the relay's loop, and return the REMBs
    the relay sent from the first stall on, and the estimate and rate before it."""
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"]))
    await plane.start()
    peer = ThreadPeer()
    pc: RTCPeerConnection | None = None
    try:
        pc, offer = await peer.run(lambda: make_publisher(NoiseTrack(320, 180)))
        _session, sdp = await plane.publish("1", offer.encode())
        await peer.run(lambda: answer(pc, sdp))  # type: ignore[arg-type]
        receiver = plane.relays["1"].publisher.receivers["video"]  # type: ignore[union-attr]
        estimator = receiver.uplink
        assert estimator is not None
        rembs: list[tuple[float, int]] = []
        lags: list[int] = []  # ms from each packet's arrival time to its handling
        add = estimator.add

        def noted(*args: Any, **kwargs: Any) -> Any:
            lags.append(clock.current_ms() - kwargs["arrival_time_ms"])
            out = add(*args, **kwargs)
            if out is not None:
                rembs.append((time.monotonic(), out[0]))
            return out

        estimator.add = noted  # type: ignore[method-assign]
        # Warm up: the publisher sends, the delay-based estimate has settled.
        await wait_for(lambda: estimator.delay_estimate is not None, 20, "no estimate")
        await asyncio.sleep(4)
        sent = estimator.arriving_rate(clock.current_ms() / 1000)
        before = estimator.estimate
        stalled_at = time.monotonic()
        for _ in range(STALLS):
            time.sleep(STALL)  # noqa: ASYNC251 (the stall: the relay's loop does nothing)
            await asyncio.sleep(0.7)
        # Then busy: 8 ms of other work between two turns of the loop, each turn reading
        # one datagram, for BUSY seconds: the relay reads slower than packets come.
        busy_until = time.monotonic() + BUSY
        while time.monotonic() < busy_until:
            time.sleep(0.008)  # noqa: ASYNC251 (the other work)
            await asyncio.sleep(0)
        await asyncio.sleep(2)
        return {
            "sent": sent,
            "before": before,
            "after": [r for t, r in rembs if t >= stalled_at],
            "stamped": receiver.arrivals.stamped if receiver.arrivals else 0,
            "cuts": estimator.cuts,
            "lags": (min(lags), max(lags)),
        }
    finally:
        if pc is not None:
            await peer.run(pc.close)
        peer.close()
        await plane.close()
        glue.set_host_addresses([])


@pytest.mark.parametrize("kernel_time", [True, False], ids=["kernel-time", "read-time"])
async def test_a_stalled_server_loop_does_not_cut_the_publishers_estimate(
    kernel_time: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the kernel's arrival times the REMB stays where it was before the stalls
    (the lowest one sent from then on at least 3/4 of it, no standing-queue cut); with
    the times Python read the packets at (the control), the same stalls and busy loop
    cut it under half (to the 150 kbit/s floor, as measured), which is what starved a
    browser's largest layer."""
    if not kernel_time:
        monkeypatch.setattr(glue.KernelArrivals, "install", classmethod(lambda cls, dtls: None))
    found = await publish_and_stall()
    sent, after = found["sent"], found["after"]
    assert sent > 100_000, found
    assert after, found
    if kernel_time:
        assert found["stamped"] > 100, found
        # The kernel's times are on aiortc's clock: not after the packet is handled (but
        # for rounding to the ms), and before it by the backlog at most, not by years.
        assert -2 <= found["lags"][0] and found["lags"][1] < 10_000, found
        assert min(after) >= 0.75 * found["before"], found
        assert found["cuts"] == 0, found
    else:
        assert found["stamped"] == 0, found
        assert min(after) < 0.5 * found["before"], found
