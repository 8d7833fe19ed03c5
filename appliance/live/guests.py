"""Guest links: the one-time links a show's host hands a guest (an influencer, a partner
brand) to join the live from their own phone.

A link's token is random and shown once; only its SHA-256 is stored. A link expires
(engagement.guest_link_hours), may be revoked, and is single use: the first WHIP request
with it joins, binding the link to that page's own secret (its claim), so the guest's
phone may reconnect after a network change but nobody else may use the link again.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from appliance.storage.db import Database

TOKEN_BYTES = 24
MAX_SECRET = 200  # characters of a token or claim read from a request


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class GuestLink:
    id: int
    show_id: int
    expires_at: float
    joined_at: float | None
    revoked_at: float | None

    def problem(self, now: float) -> str | None:
        """Why the link cannot be opened now (None: it can)."""
        if self.revoked_at is not None:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return None


async def create(db: Database, show_id: int, user_id: int | None, hours: float) -> str:
    """A new link's token (shown once), valid `hours`. Links not yet used are revoked:
    a show has one guest link at a time."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    now = time.time()
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE guest_links SET revoked_at = ? WHERE show_id = ? AND revoked_at IS NULL "
            "AND joined_at IS NULL",
            (now, show_id),
        )
        await conn.execute(
            "INSERT INTO guest_links (show_id, token_hash, created_by, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (show_id, digest(token), user_id, now, now + hours * 3600),
        )
    return token


async def find(db: Database, show_id: int, token: str) -> GuestLink | None:
    if not token or len(token) > MAX_SECRET:
        return None
    row = await db.fetchone(
        "SELECT id, show_id, expires_at, joined_at, revoked_at FROM guest_links "
        "WHERE token_hash = ? AND show_id = ?",
        (digest(token), show_id),
    )
    if row is None:
        return None
    return GuestLink(
        row["id"], row["show_id"], row["expires_at"], row["joined_at"], row["revoked_at"]
    )


async def join(db: Database, link: GuestLink, claim: str) -> bool:
    """Whether the page holding `claim` may publish with `link`: the first claim takes
    the link (atomically: two pages racing, one wins), the same claim may come again."""
    if not claim or len(claim) > MAX_SECRET:
        return False
    now = time.time()
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE guest_links SET joined_at = ?, claim_hash = ? WHERE id = ? "
            "AND joined_at IS NULL AND revoked_at IS NULL AND expires_at > ?",
            (now, digest(claim), link.id, now),
        )
        if cur.rowcount == 1:
            return True
        cur = await conn.execute(
            "SELECT 1 FROM guest_links WHERE id = ? AND claim_hash = ? AND revoked_at IS NULL",
            (link.id, digest(claim)),
        )
        return await cur.fetchone() is not None


async def revoke_all(db: Database, show_id: int) -> None:
    """Every link of the show dies: the one given out, and the one in use."""
    await db.execute(
        "UPDATE guest_links SET revoked_at = ? WHERE show_id = ? AND revoked_at IS NULL",
        (time.time(), show_id),
    )


async def pending(db: Database, show_id: int) -> dict[str, float | bool] | None:
    """The show's live link, for the host's panel: when it expires, whether it is used."""
    row = await db.fetchone(
        "SELECT expires_at, joined_at FROM guest_links WHERE show_id = ? AND revoked_at IS NULL "
        "AND expires_at > ? ORDER BY id DESC LIMIT 1",
        (show_id, time.time()),
    )
    if row is None:
        return None
    return {"expires_at": row["expires_at"], "joined": row["joined_at"] is not None}


# The cookie holding the guest page's claim, per show (views.public.guest sets it, the
# guest's WHIP request carries it).
CLAIM_COOKIE = "vitrine_guest_{}"
