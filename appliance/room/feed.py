"""The live room's broadcast frames as a numbered feed, for readers over HTTP.

Every tick the room builds one frame for all its sockets (hub.Room.tick); the feed keeps
the last FEED_KEPT of them with a sequence number, so a reader that cannot (or need not)
hold a socket asks `/rooms/<show>/feed?after=<seq>` and gets the frames after it, the same
bytes for every reader: a cache in front (nginx `proxy_cache_lock`, a CDN collapsing
requests) turns thousands of readers into about one request per tick.
"""

from __future__ import annotations

import asyncio
from collections import deque

FEED_KEPT = 600  # frames: a minute of busy ticks (one every 100 ms)


class RoomFeed:
    def __init__(self) -> None:
        self.seq = 0  # the number of the newest frame (0: none yet)
        self.frames: deque[tuple[int, str]] = deque(maxlen=FEED_KEPT)
        self._changed = asyncio.Event()

    def push(self, text: str) -> None:
        """One broadcast frame (a JSON array of messages), from the room's tick."""
        self.seq += 1
        self.frames.append((self.seq, text))
        self._changed.set()
        self._changed = asyncio.Event()

    def after(self, seq: int) -> list[tuple[int, str]] | None:
        """The frames numbered above `seq`, oldest first; None when some of them are no
        longer kept (or `seq` is from before a restart): the reader starts again."""
        if seq > self.seq or (self.frames and seq < self.frames[0][0] - 1):
            return None
        return [(n, text) for n, text in self.frames if n > seq]

    async def wait(self, seq: int, within: float) -> None:
        """Until a frame after `seq` exists, at most `within` seconds."""
        if self.seq > seq:
            return
        try:
            await asyncio.wait_for(self._changed.wait(), within)
        except TimeoutError:
            pass
