"""Mutes and bans of a live room, by viewer identity plus a short-lived address hint.

A viewer is the `vitrine_viewer` cookie, which its owner can drop. So a sanction also
remembers the address the viewer had, for a short while (`HINT_SECONDS`): a viewer
identity *first seen in the room after the sanction* that comes from that address within
the window is taken for the sanctioned viewer. Viewers who were already in the room from
the same address (a shop's Wi-Fi, a carrier's NAT) are other people and are left alone.
A whole-address ban, which hits everyone behind the address, is only made when a
moderator asks for it explicitly.

Sanctions are rows of `room_sanctions` (appliance/room/store.py), loaded with the room,
so a restart keeps them; a moderator's undo sets `lifted_at`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

HINT_SECONDS = 10 * 60  # how long a sanctioned viewer's address is remembered
NO_ADDRESS = ("", "unknown")


@dataclass
class Sanction:
    id: int
    kind: str  # "mute" or "ban"
    viewer: str
    name: str
    address_hint: str
    hint_expires_at: float | None  # None with whole_address: the address, until lifted
    whole_address: bool
    created_at: float
    expires_at: float | None  # None: until lifted (bans)

    def active(self, now: float) -> bool:
        return self.expires_at is None or self.expires_at > now

    def hits(self, viewer: str, address: str, first_seen: float, now: float) -> bool:
        """Whether this sanction applies to a viewer id seen first at `first_seen`."""
        if viewer == self.viewer:
            return True
        if not self.address_hint or address != self.address_hint:
            return False
        if self.whole_address:
            return True
        # A new identity from the same address, soon after: the same person, most likely.
        hint_until = self.hint_expires_at or 0.0
        return first_seen >= self.created_at and now < hint_until

    def public(self) -> dict[str, Any]:
        """As listed to staff in the `sanctions` message."""
        return {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "since": int(self.created_at),
            "until": None if self.expires_at is None else int(self.expires_at),
            "whole_address": self.whole_address,
        }


@dataclass
class Sanctions:
    """The active sanctions of one room, and when each viewer id was first seen there."""

    by_id: dict[int, Sanction] = field(default_factory=dict)
    first_seen: dict[str, float] = field(default_factory=dict)

    def seen(self, viewer: str, at: float | None = None) -> None:
        self.first_seen.setdefault(viewer, time.time() if at is None else at)

    def find(
        self, kind: str, viewer: str, address: str, now: float | None = None
    ) -> Sanction | None:
        now = time.time() if now is None else now
        first = self.first_seen.get(viewer, now)
        for sanction in self.by_id.values():
            if sanction.kind == kind and sanction.active(now):
                if sanction.hits(viewer, address, first, now):
                    return sanction
        return None

    def add(self, sanction: Sanction) -> None:
        self.by_id[sanction.id] = sanction

    def lift(self, sanction_id: int) -> Sanction | None:
        return self.by_id.pop(sanction_id, None)

    def listing(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        for sid in [s.id for s in self.by_id.values() if not s.active(now)]:
            del self.by_id[sid]
        return [s.public() for s in sorted(self.by_id.values(), key=lambda s: s.created_at)]
