"""How the live room's tick keeps time, logged every 10 s while anyone is connected.

A tick that wakes late means the event loop was busy (or paused by the garbage
collector) and every viewer's next frame is late by as much; the fan-out is the time the
tick itself takes to send to everyone. Together they are the server's share of chat
delivery time, so the log says when a room is overloaded, and scripts/loadtest reads
these lines to show the server's side beside the clients'.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger("appliance.room.health")
REPORT_EVERY = 10.0
LATE = 0.1  # a tick this late makes the 250 ms delivery budget hard to keep


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class RoomHealth:
    def __init__(self) -> None:
        self.lags: list[float] = []
        self.fanouts: list[float] = []
        self.gc_pauses: list[float] = []
        self._gc_started = 0.0
        self._since = time.monotonic()

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.gc_pauses.append(time.perf_counter() - self._gc_started)

    def tick(self, lag: float, fanout: float, clients: int) -> None:
        self.lags.append(lag)
        self.fanouts.append(fanout)
        now = time.monotonic()
        if now - self._since < REPORT_EVERY:
            return
        if clients:
            level = logging.WARNING if _ms(self.lags, 0.99) > LATE * 1000 else logging.INFO
            log.log(
                level,
                "live room: %d clients, %d ticks, tick lag p50 %.1f ms p99 %.1f ms max %.1f ms, "
                "fan-out p99 %.1f ms max %.1f ms, %d GC passes, longest %.1f ms",
                clients,
                len(self.lags),
                _ms(self.lags, 0.5),
                _ms(self.lags, 0.99),
                _ms(self.lags, 1.0),
                _ms(self.fanouts, 0.99),
                _ms(self.fanouts, 1.0),
                len(self.gc_pauses),
                _ms(self.gc_pauses, 1.0),
            )
        self.lags, self.fanouts, self.gc_pauses = [], [], []
        self._since = now
