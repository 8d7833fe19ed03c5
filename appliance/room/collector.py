"""When the garbage collector may make a full pass, in the serving process.

A full pass looks at every object the process holds, 120 to 150 for each connected
viewer, and stops the event loop while it runs: with 2,000 viewers, 0.25 s in a process
holding only the room (scripts/bench room-gc) and up to 1.4 s in a serving process under
load (the load test's "longest GC" column before this policy; docs/perf.md). Every
viewer's chat waits as long. Left to itself, Python makes one whenever the objects that
survived young passes have grown by a quarter, which is exactly what a show's audience
does while it arrives, and again as viewers come and go.

So the young generations are collected as usual (they reclaim nearly all garbage, in
passes the load test shows at 50 to 170 ms at most), and full passes happen only here:
about once a minute while no one is in a live room (cheap then), and during a show at
most every ten minutes, to bound what departed viewers leave behind (docs/perf.md).
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)

YOUNG = 50_000  # allocations between passes over the youngest generation
MIDDLE = 50  # young passes between passes over the middle one
NEVER = 1 << 30  # no automatic full passes
IDLE_EVERY = 60.0  # seconds between full passes while no one is in a room
BUSY_EVERY = 600.0  # seconds between full passes while viewers are in


class FullCollections:
    def __init__(self) -> None:
        self.last = time.monotonic()

    def take_over(self) -> None:
        """Collect and freeze what start-up made (it lives as long as the process, so no
        pass need look at it again), then stop automatic full passes."""
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG, MIDDLE, NEVER)

    def tick(self, now: float, clients: int) -> None:
        if now - self.last < (BUSY_EVERY if clients else IDLE_EVERY):
            return
        started = time.perf_counter()
        freed = gc.collect()
        self.last = time.monotonic()
        if clients:
            log.info(
                "full garbage collection with %d clients in rooms: %d objects freed in %.0f ms",
                clients,
                freed,
                (time.perf_counter() - started) * 1000,
            )
