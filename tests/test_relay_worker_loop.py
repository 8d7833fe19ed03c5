"""A relay worker that has fallen behind on its feed still turns its event loop.

Every fed packet goes to each of the worker's viewers, so reading a long backlog in one
callback would hold the loop for as long as the backlog takes to forward: the viewers'
ICE consent answers, DTLS handshakes and RTCP would wait, and consent checks that wait
more than 0.5 s six times over close the connection. The worker reads its real feed
socket here (the pool's socketpair, a backlog of packets already in it) and a probe
scheduled on the same loop must run between the batches.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

from aiortc.rtp import RtpPacket

from media.plane import MediaSettings
from media.workers.feed import FedPacket, FedReport, encode_packet, feed_pair
from media.workers.worker import FEED_BATCH, Worker, WorkerPlane

BACKLOG = 200


class CountingPlane(WorkerPlane):
    """The worker's plane, counting what it is fed instead of forwarding it."""

    def __init__(self) -> None:
        super().__init__(MediaSettings(), self._ignore)
        self.items: list[FedPacket | FedReport] = []

    @staticmethod
    def _ignore(_message: dict[str, Any]) -> None:
        return None

    def fed(self, item: FedPacket | FedReport) -> None:
        self.items.append(item)


async def test_a_worker_behind_on_its_feed_serves_its_loop_between_batches() -> None:
    main_end, worker_end = feed_pair()
    control_a, control_b = socket.socketpair()  # the control channel, unused here
    worker = Worker(0, control_a, worker_end)
    plane = worker.plane = CountingPlane()
    for seq in range(BACKLOG):
        packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000)
        packet.payload = b"\x00" * 1000
        main_end.send(encode_packet("1", "video", 1, "video/h264", 90000, packet))
    worker_end.setblocking(False)
    loop = asyncio.get_running_loop()
    seen: list[int] = []  # packets read when each turn of the loop ran the probe
    done = loop.create_future()

    def probe() -> None:
        seen.append(len(plane.items))
        if len(plane.items) >= BACKLOG:
            done.set_result(None)
        else:
            loop.call_soon(probe)

    loop.add_reader(worker_end.fileno(), worker._read_feed)
    try:
        loop.call_soon(probe)
        await asyncio.wait_for(done, 10)
    finally:
        loop.remove_reader(worker_end.fileno())
        for sock in (main_end, worker_end, control_a, control_b):
            sock.close()
    assert [item.packet.sequence_number for item in plane.items] == list(range(BACKLOG))  # type: ignore[union-attr]
    # The loop turned while the backlog was still there, at most a batch at a time.
    assert any(0 < n < BACKLOG for n in seen), seen
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert max(steps) <= FEED_BATCH < BACKLOG, seen
