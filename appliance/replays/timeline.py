"""Where a moment of the live show falls in its replay.

Pins and chat messages are stored with wall-clock times. A replay is made of recorded
parts (one, or more when the server restarted during the show); each part's time runs with
the wall clock from the moment it started, and the parts follow each other in the replay.
A trim then cuts the replay, starting `cut_start` seconds in. This module maps between the
two clocks; it is pure, so it is tested on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

Segment = tuple[float, float, float]  # (wall clock of its start, replay start, replay end)


@dataclass(frozen=True)
class Timeline:
    segments: tuple[Segment, ...]
    cut_start: float = 0.0  # seconds of the untrimmed replay cut from the front
    duration: float = 0.0  # of the (trimmed) replay

    @classmethod
    def of(cls, timeline_json: str, cut_start: float, duration: float) -> Timeline:
        try:
            raw: Any = json.loads(timeline_json or "[]")
            segments = tuple((float(a), float(b), float(c)) for a, b, c in raw)
        except (ValueError, TypeError):
            segments = ()
        return cls(segments, float(cut_start or 0.0), float(duration or 0.0))

    def at(self, wall: float) -> float | None:
        """The replay time of wall-clock `wall`: None when it was not recorded (between
        parts, or cut by the trim); before the recording started it is 0 unless the start
        was trimmed, after it ended it is the end unless the end was trimmed."""
        if not self.segments:
            return None
        first, last = self.segments[0], self.segments[-1]
        found: float | None = None
        if wall < first[0]:
            found = first[1]
        elif wall > last[0] + (last[2] - last[1]):
            found = last[2]
        else:
            for start, begin, end in self.segments:
                if start <= wall <= start + (end - begin):
                    found = begin + (wall - start)
        if found is None:
            return None  # the server was down: nothing was recorded then
        t = found - self.cut_start
        if t < 0:
            return 0.0 if self.cut_start == 0 else None
        if t > self.duration:
            # Rounding at the very end, or after a trimmed end.
            return self.duration if t <= self.duration + 1.0 else None
        return t

    def walls(self, start: float, end: float) -> list[tuple[float, float]]:
        """The wall-clock spans that replay times [start, end) come from. The first span
        reaches back to the beginning of time when `start` is the replay's own start (chat
        from before the recording plays at 0), and the last forward when `end` passes the
        end (messages sent while the show was closing)."""
        spans: list[tuple[float, float]] = []
        if not self.segments:
            return spans
        lo_t, hi_t = start + self.cut_start, end + self.cut_start
        for n, (wall, begin, seg_end) in enumerate(self.segments):
            a, b = max(lo_t, begin), min(hi_t, seg_end)
            if n == len(self.segments) - 1 and hi_t > seg_end:
                b = hi_t  # so the open end below applies
            if a >= b:
                continue
            lo = wall + (a - begin)
            hi = wall + (b - begin)
            if n == 0 and start <= 0 and self.cut_start == 0:
                lo = float("-inf")
            if n == len(self.segments) - 1 and end >= self.duration:
                hi = float("inf")
            spans.append((lo, hi))
        return spans
