"""Sign-ups: an address for one show's reminders, pending until its owner confirms.

The links in the emails carry a token: the sign-up's id and an HMAC of its id, address
and a random nonce under a key derived from the app's secret. Nothing else identifies a
sign-up, and a deleted one (unsubscribed, expired) has no valid link left.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from appliance.storage.db import Database, Row

CONFIRM, UNSUBSCRIBE = "confirm", "unsubscribe"
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?\.[A-Za-z]{2,}$")
MAX_EMAIL = 254
# A pending sign-up asked again gets another confirmation email at most this often.
RESEND_SECONDS = 600
# A sign-up nobody confirmed is deleted after this long.
PENDING_SECONDS = 2 * 86400
TOKEN_RE = re.compile(r"^([0-9]{1,18})\.([A-Za-z0-9_-]{24})$")


class BadAddress(ValueError):
    pass


@dataclass(frozen=True)
class Signup:
    id: int
    show_id: int
    email: str
    lang: str
    viewer: str
    nonce: str
    created_at: int
    confirmed_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Signup:
        return cls(
            row["id"],
            row["show_id"],
            row["email"],
            row["lang"],
            row["viewer"],
            row["nonce"],
            row["created_at"],
            row["confirmed_at"],
        )


def clean_email(value: str) -> str:
    """The address as given, trimmed; BadAddress when it cannot be one."""
    email = value.strip()
    if not email or len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        raise BadAddress(email)
    return email


def derive_key(app_secret: str) -> bytes:
    return hmac.new(app_secret.encode(), b"vitrine reminders v1", hashlib.sha256).digest()


def make_token(key: bytes, purpose: str, signup: Signup) -> str:
    text = f"{purpose}\n{signup.id}\n{signup.email.lower()}\n{signup.nonce}".encode()
    mac = hmac.new(key, text, hashlib.sha256).digest()[:18]
    return f"{signup.id}.{base64.urlsafe_b64encode(mac).decode()}"


def token_id(token: str) -> int | None:
    """The sign-up a token names, or None when it is not shaped like one."""
    match = TOKEN_RE.match(token)
    return int(match.group(1)) if match else None


async def get(db: Database, signup_id: int) -> Signup | None:
    row = await db.fetchone("SELECT * FROM reminder_signups WHERE id = ?", (signup_id,))
    return None if row is None else Signup.from_row(row)


async def by_token(db: Database, key: bytes, purpose: str, token: str) -> Signup | None:
    """The sign-up whose valid `purpose` link `token` is, else None."""
    signup_id = token_id(token)
    if signup_id is None:
        return None
    signup = await get(db, signup_id)
    if signup is None or not hmac.compare_digest(make_token(key, purpose, signup), token):
        return None
    return signup


async def sign_up(db: Database, show_id: int, email: str, lang: str, viewer: str, now: int) -> bool:
    """Record the sign-up (pending) and queue its confirmation email; an address already
    signed up for the show is left as it is. True when an email was queued."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "SELECT id, created_at, confirmed_at FROM reminder_signups "
            "WHERE show_id = ? AND email = ?",
            (show_id, email),
        )
        row = await cur.fetchone()
        if row is None:
            cur = await conn.execute(
                "INSERT INTO reminder_signups (show_id, email, lang, viewer, nonce, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (show_id, email, lang, viewer, secrets.token_urlsafe(16), now),
            )
            signup_id = int(cur.lastrowid or 0)
        elif row["confirmed_at"] is None and now - row["created_at"] >= RESEND_SECONDS:
            signup_id = int(row["id"])
            await conn.execute(
                "UPDATE reminder_signups SET created_at = ?, lang = ? WHERE id = ?",
                (now, lang, signup_id),
            )
        else:
            return False
        cur = await conn.execute(
            "INSERT OR IGNORE INTO reminder_outbox (signup_id, message, next_attempt_at) "
            "VALUES (?, 'confirm', ?)",
            (signup_id, now),
        )
        return cur.rowcount > 0


async def confirm(db: Database, signup: Signup, now: float) -> bool:
    """Confirm a pending sign-up; the KPIs count it (a `reminder_signup` event, no
    address). False when it was confirmed already."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "UPDATE reminder_signups SET confirmed_at = ? WHERE id = ? AND confirmed_at IS NULL",
            (int(now), signup.id),
        )
        if cur.rowcount == 0:
            return False
        await conn.execute(
            "DELETE FROM reminder_outbox WHERE signup_id = ? AND message = 'confirm'",
            (signup.id,),
        )
        await conn.execute(
            "INSERT INTO events (show_id, ts, viewer, kind, props) VALUES (?, ?, ?, ?, ?)",
            (signup.show_id, now, signup.viewer or "reminder", "reminder_signup", json.dumps({})),
        )
    return True


async def unsubscribe(db: Database, signup_id: int) -> bool:
    """Delete the sign-up, its address and its queued emails. False when it was gone."""
    async with db.transaction() as conn:
        cur = await conn.execute("DELETE FROM reminder_signups WHERE id = ?", (signup_id,))
        return cur.rowcount > 0


async def purge(db: Database, now: float, keep_days: float) -> int:
    """Delete the addresses no longer needed: sign-ups of shows that ended more than
    `keep_days` ago, and sign-ups nobody confirmed within PENDING_SECONDS."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "DELETE FROM reminder_signups WHERE (confirmed_at IS NULL AND created_at < ?) "
            "OR show_id IN (SELECT id FROM shows WHERE status = 'ended' "
            "AND COALESCE(live_ended_at, starts_at) < ?)",
            (now - PENDING_SECONDS, now - keep_days * 86400),
        )
        return int(cur.rowcount)
