"""Which of the publisher's lost packets to ask for again (NACK), and when.

aiortc's receiver asks again for every packet still missing each time a new gap
appears, with no limit and no notion of time. On a narrow uplink that is a flood: the
retransmissions queue behind the video, arrive late, the packets stay "missing", and
each new loss asks for all of them once more, so the link carries the same packets
several times and the queue (the delay) grows. Here each lost packet is asked for at
once, then again only after the repair round trip (NACK sent to packet back, measured
as Karn does, on packets asked once), at most MAX_TRIES times and only while it is
young enough to be worth showing: a live picture has no use for a packet a second late.
"""

from __future__ import annotations

SEQ_MOD = 1 << 16
MAX_AGE = 1.0  # seconds after it went missing, a packet is given up
MAX_TRIES = 5
MIN_INTERVAL = 0.02  # seconds between two asks for one packet, whatever the round trip
MAX_MISSING = 512  # a jump larger than this is a new sequence, not a loss


class UpstreamNacks:
    """The NACK state of one incoming stream (one SSRC)."""

    __slots__ = ("_missing", "asked", "given_up", "highest", "lost", "recovered", "rtt", "ssrc")

    def __init__(self, ssrc: int = 0) -> None:
        self.ssrc = ssrc
        self.highest: int | None = None
        # seq -> [went missing at, last asked at, tries]
        self._missing: dict[int, list[float]] = {}
        self.rtt = 0.1  # repair round trip, seconds, smoothed
        self.lost = 0  # packets that went missing
        self.asked = 0  # NACK entries sent
        self.recovered = 0  # missing packets that came after all
        self.given_up = 0

    @property
    def missing(self) -> list[int]:
        return list(self._missing)

    def received(self, seq: int, now: float) -> bool:
        """Note packet `seq`; False when it is of no use: already had, or given up on (a
        browser's padding resends packets nobody asked for)."""
        highest = self.highest
        if highest is None:
            self.highest = seq
            return True
        ahead = (seq - highest) % SEQ_MOD
        if ahead == 0:
            return False
        if ahead < SEQ_MOD // 2:
            if ahead > MAX_MISSING:
                # Not a loss: the source jumped (a restart). Start afresh from here.
                self._missing.clear()
            else:
                for n in range(1, ahead):
                    self._missing[(highest + n) % SEQ_MOD] = [now, 0.0, 0]
                    self.lost += 1
                if len(self._missing) > MAX_MISSING:
                    for old in list(self._missing)[: len(self._missing) - MAX_MISSING]:
                        del self._missing[old]
                        self.given_up += 1
            self.highest = seq
            return True
        entry = self._missing.pop(seq, None)
        if entry is None:
            return False
        self.recovered += 1
        if entry[2] == 1:  # asked once: this is that ask's round trip
            self.rtt = 0.875 * self.rtt + 0.125 * max(now - entry[1], 0.0)
        return True

    def due(self, now: float, queued: float = 0.0) -> list[int]:
        """The packets to ask for now (and note that they were). `queued`: seconds the
        uplink is known to hold now, which a retransmission waits behind too."""
        if not self._missing:
            return []
        # The measured round trip already holds the queue of its time; a queue that
        # has grown since is the better guess.
        interval = max(MIN_INTERVAL, 1.5 * max(self.rtt, queued))
        asking: list[int] = []
        for seq, entry in list(self._missing.items()):
            went, last, tries = entry
            if now - went > MAX_AGE or tries >= MAX_TRIES:
                if tries >= MAX_TRIES and now - last < interval:
                    continue  # its last ask may still be answered
                del self._missing[seq]
                self.given_up += 1
            elif tries == 0 or now - last >= interval:
                entry[1], entry[2] = now, tries + 1
                asking.append(seq)
        self.asked += len(asking)
        return asking
