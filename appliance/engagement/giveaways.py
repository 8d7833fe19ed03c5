"""A giveaway of a live room, and its fair, checkable draw.

The draw takes the entrants recorded at that moment, in a fixed order (sorted by viewer
id), and a fresh 32-byte seed from `secrets`; the winner is the entrant at index
SHA-256(seed || SHA-256(entrants)) mod n. Staff see the entrant count, the SHA-256 of the
seed and of the entrant list at once, and the seed is kept with the draw, so anyone
holding the log can later recompute the pick and check it was not chosen by hand.
A 256-bit number taken modulo a few thousand entrants is uniform to within 2^-240.

One win per viewer per show: a viewer who won (and has not let the win lapse) is never
drawn again in that show. A winner who does not claim within the time staff set loses
the prize, and the next draw leaves them out.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

RULES = ("all", "chatters", "voters", "quiz")
CLAIM_DEFAULT, CLAIM_MIN, CLAIM_MAX = 120, 30, 3600  # seconds a winner has to claim


def public_id(show_id: int, viewer: str) -> str:
    """What everyone sees of a winner's identity: the viewer id is the viewer's cookie,
    so it is never broadcast; this stands for it, one per show."""
    return hashlib.sha256(f"vitrine-winner:{show_id}:{viewer}".encode()).hexdigest()[:16]


def entrants_digest(entrants: list[str]) -> bytes:
    return hashlib.sha256("\n".join(entrants).encode()).digest()


def pick(entrants: list[str], seed: bytes) -> int:
    """The index of the winner among `entrants` (sorted) for this seed."""
    number = int.from_bytes(hashlib.sha256(seed + entrants_digest(entrants)).digest(), "big")
    return number % len(entrants)


@dataclass(frozen=True)
class Draw:
    number: int  # 1 for the first draw of a giveaway, 2 for a redraw...
    viewer: str
    name: str
    entrants: int
    seed: bytes
    seed_hash: str
    entrants_hash: str
    at: float
    claim_until: float


def draw(entrants: dict[str, str], number: int, claim_seconds: int) -> Draw | None:
    """A fair pick among `entrants` (viewer id -> name), or None when there are none."""
    if not entrants:
        return None
    order = sorted(entrants)
    seed = secrets.token_bytes(32)
    viewer = order[pick(order, seed)]
    now = time.time()
    return Draw(
        number,
        viewer,
        entrants[viewer],
        len(order),
        seed,
        hashlib.sha256(seed).hexdigest(),
        entrants_digest(order).hex(),
        now,
        now + claim_seconds,
    )


@dataclass
class Giveaway:
    id: int
    prize: str
    rule: str
    claim_seconds: int = CLAIM_DEFAULT
    open: bool = True  # taking entries
    entrants: dict[str, str] = field(default_factory=dict)  # viewer id -> name
    addresses: set[str] = field(default_factory=set)
    left_out: set[str] = field(default_factory=set)  # winners whose win lapsed
    draws: list[Draw] = field(default_factory=list)
    claimed: bool = False
    contact: str | None = None  # the claiming winner's email, for staff only
    dirty: bool = False
    sent_at: float = -1e9

    @property
    def current(self) -> Draw | None:
        return self.draws[-1] if self.draws else None

    def enter(self, viewer: str, name: str, address: str) -> bool:
        if not self.open or viewer in self.entrants or (address and address in self.addresses):
            return False
        self.entrants[viewer] = name
        if address:
            self.addresses.add(address)
        self.dirty = True
        return True

    def pick(self, show_winners: set[str]) -> Draw | None:
        """Close the entries and draw among those who may still win (with nobody to
        draw, the entries stay as they were)."""
        eligible = {
            v: n
            for v, n in self.entrants.items()
            if v not in show_winners and v not in self.left_out
        }
        found = draw(eligible, len(self.draws) + 1, self.claim_seconds)
        if found is not None:
            self.open = False
            self.dirty = True
            self.draws.append(found)
            self.claimed = False
        return found

    def lapsed(self, now: float | None = None) -> bool:
        current = self.current
        now = time.time() if now is None else now
        return current is not None and not self.claimed and now >= current.claim_until

    def message(self, show_id: int) -> dict[str, Any]:
        current = self.current
        winner = None
        if current is not None and current.viewer not in self.left_out:
            winner = {"viewer": public_id(show_id, current.viewer), "name": current.name}
        return {
            "type": "giveaway",
            "id": self.id,
            "prize": self.prize,
            "rule": self.rule,
            "open": self.open,
            "entrants": len(self.entrants),
            "winner": winner,
            "claimed": self.claimed,
        }

    def staff_message(self) -> dict[str, Any] | None:
        current = self.current
        if current is None:
            return None
        return {
            "type": "giveaway_draw",
            "id": self.id,
            "draw": current.number,
            "entrants": current.entrants,
            "seed_hash": current.seed_hash,
            "entrants_hash": current.entrants_hash,
            "name": current.name,
            "claim_until": int(current.claim_until),
            "claimed": self.claimed,
            "email": self.contact if self.claimed else None,
        }
