"""The single-use codes of an offer: each claiming viewer gets a different one.

Taking a code is synchronous (no await between looking and taking), so on the room's one
event loop two claims can never get the same code, however close together they come.
"""

from __future__ import annotations

import re
from collections import deque

CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_CODES = 10_000  # codes one offer may carry
CHUNK = 200  # codes one message may carry (a frame is at most 4 KiB)


def parse_codes(raw: object, limit: int = CHUNK) -> list[str] | None:
    """A list of 1..limit distinct valid codes, or None."""
    if not isinstance(raw, list) or not 1 <= len(raw) <= limit:
        return None
    if not all(isinstance(c, str) and CODE_RE.match(c) for c in raw):
        return None
    if len(set(raw)) != len(raw):
        return None
    return list(raw)


class CodePool:
    def __init__(self, codes: list[str]) -> None:
        self._left: deque[str] = deque()
        self._known: set[str] = set()
        self.given: dict[str, str] = {}  # viewer id or "@address" -> its code
        self.add(codes)

    def add(self, codes: list[str]) -> int:
        """Add codes not seen before (a repeated one is ignored); how many were added.
        Never more than MAX_CODES in all."""
        added = 0
        for code in codes:
            if code in self._known or len(self._known) >= MAX_CODES:
                continue
            self._known.add(code)
            self._left.append(code)
            added += 1
        return added

    @property
    def total(self) -> int:
        return len(self._known)

    @property
    def left(self) -> int:
        return len(self._left)

    def code_of(self, *keys: str) -> str | None:
        for key in keys:
            if key and key in self.given:
                return self.given[key]
        return None

    def take(self, *keys: str) -> str | None:
        """The next unused code for the claimer named by `keys` (its viewer id and, when
        known, "@" + its address), or None when none is left."""
        if not self._left:
            return None
        code = self._left.popleft()
        for key in keys:
            if key:
                self.given[key] = code
        return code
