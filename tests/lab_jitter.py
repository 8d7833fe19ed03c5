"""The network lab's viewers' video jitter buffer: aiortc's, but giving up on a lost
packet after a time, as a browser does, instead of after a number of packets.

aiortc's video jitter buffer holds 512 packets and lets a missing one stop every frame
after it until 512 more have come. At a small simulcast layer or a narrow link's 50
packets a second that is ten seconds of frozen picture for one packet lost for good,
where a browser gives up after its repair attempts (a few round trips) and asks for a
keyframe. So the lab's viewers give up after `wait` seconds without a frame while
packets keep coming: the missing packet's frame is dropped, and the receiver asks for a
keyframe (the buffer's `pli` answer). The frames after it decode again from there, the
way a browser's do; the time frozen still counts in the lab's figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

GIVE_UP = 0.5  # seconds: a few repair round trips at the lab's 50-120 ms


class GivingUpJitterBuffer(JitterBuffer):
    def __init__(
        self,
        capacity: int = 512,
        wait: float = GIVE_UP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(capacity, is_video=True)
        self.wait = wait
        self.given_up = 0  # frames dropped for a packet that never came
        self._clock = clock
        self._last_out: float | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        now = self._clock()
        if frame is not None or self._last_out is None:
            self._last_out = now
            return pli, frame
        if now - self._last_out < self.wait:
            return pli, frame
        hole = self._first_hole(packet.sequence_number)
        if hole is None:
            return pli, frame
        # Drop everything up to the hole and the rest of the frame it belongs to.
        if self.smart_remove(hole + 1):
            self._origin = packet.sequence_number
        self.given_up += 1
        self._last_out = now
        return True, self._remove_frame(packet.sequence_number)

    def _first_hole(self, newest: int) -> int | None:
        """Where the first missing packet is, counted from the oldest held, if one is
        missing before `newest` (the packet just added)."""
        origin = self._origin
        if origin is None:
            return None
        span = uint16_add(newest, -origin)
        if span >= self._capacity:
            return None
        for offset in range(span):
            if self._packets[(origin + offset) % self._capacity] is None:
                return offset
        return None
