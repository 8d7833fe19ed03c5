"""Staff accounts: admins, hosts and moderators."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from appliance.accounts.security import hash_password, verify_password
from appliance.storage.db import Database, Row

ROLES = ("admin", "host", "moderator")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    role: str
    active: bool

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(row["id"], row["email"], row["name"], row["role"], bool(row["active"]))


class DuplicateEmail(ValueError):
    pass


async def list_users(db: Database) -> list[User]:
    rows = await db.fetchall("SELECT * FROM users ORDER BY role, name COLLATE NOCASE")
    return [User.from_row(r) for r in rows]


async def get_user(db: Database, user_id: int) -> User | None:
    row = await db.fetchone("SELECT * FROM users WHERE id = ?", (user_id,))
    return None if row is None else User.from_row(row)


async def admin_exists(db: Database) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM users WHERE role = 'admin' AND active = 1"))


async def count_active_admins(db: Database) -> int:
    return int(await db.fetchval("SELECT COUNT(*) FROM users WHERE role='admin' AND active=1"))


async def create_user(db: Database, email: str, name: str, role: str, password: str) -> User:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    pw_hash = await asyncio.to_thread(hash_password, password)
    async with db.transaction() as conn:
        async with conn.execute("SELECT 1 FROM users WHERE email = ?", (email,)) as cur:
            if await cur.fetchone():
                raise DuplicateEmail(email)
        cur2 = await conn.execute(
            "INSERT INTO users (email, name, role, password_hash, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (email, name, role, pw_hash, int(time.time())),
        )
        user_id = int(cur2.lastrowid or 0)
    return User(user_id, email, name, role, True)


async def update_user(db: Database, user_id: int, name: str, role: str, active: bool) -> None:
    await db.execute(
        "UPDATE users SET name = ?, role = ?, active = ? WHERE id = ?",
        (name, role, int(active), user_id),
    )


async def set_password(db: Database, user_id: int, password: str) -> None:
    pw_hash = await asyncio.to_thread(hash_password, password)
    await db.execute("UPDATE users SET password_hash = ? WHERE id = ?", (pw_hash, user_id))


async def delete_user(db: Database, user_id: int) -> None:
    await db.execute("DELETE FROM users WHERE id = ?", (user_id,))


async def authenticate(db: Database, email: str, password: str) -> User | None:
    row = await db.fetchone("SELECT * FROM users WHERE email = ? AND active = 1", (email,))
    # Hash even when the account does not exist, so timing does not reveal which do.
    stored = row["password_hash"] if row else _DUMMY_HASH
    ok = await asyncio.to_thread(verify_password, password, stored)
    return User.from_row(row) if (row and ok) else None


async def check_password(db: Database, user_id: int, password: str) -> bool:
    """Whether `password` is the user's current one (asked before they change it)."""
    stored = await db.fetchval("SELECT password_hash FROM users WHERE id = ?", (user_id,))
    ok = await asyncio.to_thread(verify_password, password, stored or _DUMMY_HASH)
    return bool(stored) and ok


_DUMMY_HASH = hash_password("not-a-real-password")
