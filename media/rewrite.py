"""Per-viewer rewriting of RTP sequence numbers and timestamps.

Each viewer sees one continuous stream, whatever happens upstream: packets the relay
drops for that viewer, a publisher that reconnects with new sequence numbers and
timestamps, a switch of codec. A small ring remembers which source packet each
outgoing sequence number carried, so a viewer's NACK can be answered from the
stream's packet cache.
"""

from __future__ import annotations

from array import array

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
RING = 1024  # a power of two: rewrite() masks with RING - 1


class SequenceRewriter:
    __slots__ = (
        "_anchored",
        "_clock_rate",
        "_last_out_time",
        "_last_out_ts",
        "_next_seq",
        "_ring_gen",
        "_ring_in",
        "_ring_out",
        "_seq_offset",
        "_ts_offset",
    )

    def __init__(self, first_seq: int, first_ts: int, clock_rate: int) -> None:
        self._next_seq = first_seq % SEQ_MOD
        self._seq_offset = 0
        self._ts_offset = 0
        self._last_out_ts = first_ts % TS_MOD
        self._last_out_time: float | None = None
        self._anchored = False
        self._clock_rate = clock_rate
        self._ring_in = array("l", [-1]) * RING
        self._ring_out = array("l", [-1]) * RING
        self._ring_gen = array("l", [-1]) * RING

    def reanchor(self) -> None:
        """The next packet starts a new run: continue numbering from where we are."""
        self._anchored = False

    def rewrite(self, in_seq: int, in_ts: int, now: float, generation: int = 0) -> tuple[int, int]:
        """(out_seq, out_ts) for a source packet about to be sent."""
        if not self._anchored:
            self._seq_offset = (self._next_seq - in_seq) % SEQ_MOD
            if self._last_out_time is None:
                target_ts = self._last_out_ts
            else:
                # Keep the clock running across the gap so players do not stall.
                elapsed = max(now - self._last_out_time, 0.0)
                target_ts = self._last_out_ts + max(int(elapsed * self._clock_rate), 1)
            self._ts_offset = (target_ts - in_ts) % TS_MOD
            self._anchored = True
        # Masks, not `% SEQ_MOD` (a global looked up per use): this runs per packet per
        # viewer. SEQ_MOD, TS_MOD and RING are powers of two.
        out_seq = (in_seq + self._seq_offset) & 0xFFFF
        out_ts = (in_ts + self._ts_offset) & 0xFFFFFFFF
        # Only move forward: a reordered packet must not rewind the counters.
        if (out_seq - self._next_seq) & 0xFFFF < 0x8000:
            self._next_seq = (out_seq + 1) & 0xFFFF
            self._last_out_ts = out_ts
            self._last_out_time = now
        slot = out_seq & 0x3FF
        self._ring_in[slot] = in_seq
        self._ring_out[slot] = out_seq
        self._ring_gen[slot] = generation
        return out_seq, out_ts

    def unsend(self, out_seq: int) -> None:
        """`out_seq` was not sent after all: hand its number to the next packet."""
        if (out_seq + 1) % SEQ_MOD == self._next_seq:
            self._next_seq = out_seq
            self._seq_offset = (self._seq_offset - 1) % SEQ_MOD
        self._ring_out[out_seq % RING] = -1

    def source_of(self, out_seq: int) -> tuple[int, int] | None:
        """(in_seq, generation) of an outgoing packet still remembered, else None."""
        slot = out_seq % RING
        if self._ring_out[slot] != out_seq:
            return None
        return self._ring_in[slot], self._ring_gen[slot]

    def timestamp_for(self, in_ts: int) -> int:
        return (in_ts + self._ts_offset) % TS_MOD
