"""Server-side staff sessions: the cookie carries a random token, the database its hash.

A session is a row of the `sessions` table. Deleting the row ends the session at once,
wherever the cookie is: signing out ends one, a password change, a role change or a
deactivation ends all of a user's. The table holds SHA-256 digests, never the tokens,
so a copy of the database does not open anyone's session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Mapping
from typing import Any

from appliance.accounts.users import User
from appliance.storage.db import Database

# The key of the token in Quart's signed session cookie (the CSRF token sits beside it).
COOKIE_KEY = "session"
# A session unused this long ends; one in use ends this long after sign-in anyway.
IDLE_SECONDS = 14 * 24 * 3600
MAX_SECONDS = 90 * 24 * 3600
# seen_at is rewritten at most this often, so browsing is not one write per request.
SEEN_EVERY_SECONDS = 60
_MAX_TOKEN_CHARS = 100


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start(db: Database, user: User, user_agent: str = "", address: str = "") -> str:
    """A new session for `user`; returns the token the cookie must carry."""
    now = int(time.time())
    token = secrets.token_urlsafe(32)
    async with db.transaction() as conn:
        # Signing in is rare and already costly: the right moment to drop expired rows.
        await conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,))
        await conn.execute(
            "INSERT INTO sessions (id, user_id, created_at, seen_at, expires_at, user_agent, "
            "address) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (digest(token), user.id, now, now, now + IDLE_SECONDS, user_agent[:200], address[:64]),
        )
    return token


def token_of(session_mapping: Mapping[str, Any] | None) -> str | None:
    """The session token a (Quart) session mapping carries, if it looks like one."""
    token = session_mapping.get(COOKIE_KEY) if session_mapping is not None else None
    if isinstance(token, str) and 0 < len(token) <= _MAX_TOKEN_CHARS:
        return token
    return None


async def signed_in_user(db: Database, session_mapping: Mapping[str, Any] | None) -> User | None:
    """The active user whose unexpired session the mapping names, else None."""
    token = token_of(session_mapping)
    if token is None:
        return None
    key = digest(token)
    row = await db.fetchone(
        "SELECT u.id, u.email, u.name, u.role, u.active, s.created_at AS s_created, "
        "s.seen_at AS s_seen, s.expires_at AS s_expires "
        "FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?",
        (key,),
    )
    now = int(time.time())
    if row is None or row["s_expires"] <= now or not row["active"]:
        return None
    if now - row["s_seen"] >= SEEN_EVERY_SECONDS:
        expires = min(now + IDLE_SECONDS, row["s_created"] + MAX_SECONDS)
        await db.execute(
            "UPDATE sessions SET seen_at = ?, expires_at = ? WHERE id = ?", (now, expires, key)
        )
    return User.from_row(row)


async def end(db: Database, token: str | None) -> None:
    """End one session (signing out)."""
    if token:
        await db.execute("DELETE FROM sessions WHERE id = ?", (digest(token),))


async def end_all(db: Database, user_id: int, except_token: str | None = None) -> int:
    """End every session of a user, but the one `except_token` names; returns how many."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "DELETE FROM sessions WHERE user_id = ? AND id != ?",
            (user_id, digest(except_token) if except_token else ""),
        )
        return int(cur.rowcount)


async def prune(db: Database) -> int:
    """Drop expired sessions; returns how many."""
    async with db.transaction() as conn:
        cur = await conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (int(time.time()),))
        return int(cur.rowcount)


async def open_counts(db: Database) -> dict[int, int]:
    """How many unexpired sessions each user has."""
    rows = await db.fetchall(
        "SELECT user_id, COUNT(*) FROM sessions WHERE expires_at > ? GROUP BY user_id",
        (int(time.time()),),
    )
    return {int(r[0]): int(r[1]) for r in rows}
