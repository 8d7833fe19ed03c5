"""A poll or quiz of a live room: its question, 2-4 options, its votes and its end.

One vote per viewer id and per address (as limited offers): a client that drops its
cookie and reconnects from the same address cannot vote twice. Votes are counted as
they come; the counts reach everyone at most once a second (`due`), from the room's tick.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

MIN_OPTIONS, MAX_OPTIONS = 2, 4
MIN_SECONDS, MAX_SECONDS = 5, 600
RESULT_EVERY = 1.0  # seconds between two broadcasts of the live counts


@dataclass
class Poll:
    id: int
    question: str
    options: list[str]
    ends_at: float  # Unix seconds
    correct: int | None = None  # the right option of a quiz
    counts: list[int] = field(default_factory=list)
    open: bool = True
    votes: dict[str, int] = field(default_factory=dict)  # viewer id -> option
    addresses: set[str] = field(default_factory=set)
    dirty: bool = False  # votes not yet broadcast
    sent_at: float = -1e9  # monotonic time of the last broadcast

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * len(self.options)

    @property
    def quiz(self) -> bool:
        return self.correct is not None

    def vote(self, viewer: str, address: str, option: int) -> bool:
        """Count one vote; False when this viewer or address already voted."""
        if not self.open or viewer in self.votes or (address and address in self.addresses):
            return False
        self.votes[viewer] = option
        if address:
            self.addresses.add(address)
        self.counts[option] += 1
        self.dirty = True
        return True

    def right(self) -> set[str]:
        """Viewers who found a quiz's answer."""
        if self.correct is None:
            return set()
        return {viewer for viewer, option in self.votes.items() if option == self.correct}

    def close(self) -> None:
        self.open = False
        self.dirty = True

    def expired(self, now: float | None = None) -> bool:
        return self.open and (time.time() if now is None else now) >= self.ends_at

    def due(self, now: float) -> bool:
        """Whether its counts should go out on this tick (monotonic `now`): a closed poll
        at once, an open one at most once every RESULT_EVERY seconds."""
        if not self.dirty:
            return False
        return not self.open or now - self.sent_at >= RESULT_EVERY

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "poll",
            "id": self.id,
            "question": self.question,
            "options": self.options,
            "counts": list(self.counts),
            "open": self.open,
            "ends_at": int(self.ends_at),
            "quiz": self.quiz,
        }
        if not self.open:
            message["correct"] = self.correct
        return message
