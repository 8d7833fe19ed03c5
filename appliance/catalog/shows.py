"""Shows: schedule, line-up, stream key and the scheduled -> live -> ended lifecycle.

The media plane changes a show's status through `go_live` and `end_show`; nothing else
writes the status, so every transition is checked in one place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.accounts.security import new_stream_key
from appliance.catalog.products import Product
from appliance.storage.db import Database, Row

STATUSES = ("scheduled", "live", "ended")
_TRANSITIONS = {("scheduled", "live"), ("live", "ended"), ("scheduled", "ended")}


@dataclass(frozen=True)
class ShowData:
    title: str
    description: str
    starts_at: int
    duration_minutes: int
    host_id: int | None


@dataclass(frozen=True)
class Show(ShowData):
    id: int
    cover: str | None
    status: str
    stream_key: str
    live_started_at: int | None
    live_ended_at: int | None

    @classmethod
    def from_row(cls, row: Row) -> Show:
        return cls(
            title=row["title"],
            description=row["description"],
            starts_at=row["starts_at"],
            duration_minutes=row["duration_minutes"],
            host_id=row["host_id"],
            id=row["id"],
            cover=row["cover"],
            status=row["status"],
            stream_key=row["stream_key"],
            live_started_at=row["live_started_at"],
            live_ended_at=row["live_ended_at"],
        )

    @property
    def ends_at(self) -> int:
        return self.starts_at + self.duration_minutes * 60


class BadTransition(ValueError):
    pass


async def list_shows(db: Database, status: str | None = None) -> list[Show]:
    if status is None:
        rows = await db.fetchall("SELECT * FROM shows ORDER BY starts_at DESC")
    else:
        order = "ASC" if status == "scheduled" else "DESC"
        rows = await db.fetchall(
            f"SELECT * FROM shows WHERE status = ? ORDER BY starts_at {order}", (status,)
        )
    return [Show.from_row(r) for r in rows]


async def get_show(db: Database, show_id: int) -> Show | None:
    row = await db.fetchone("SELECT * FROM shows WHERE id = ?", (show_id,))
    return None if row is None else Show.from_row(row)


async def create_show(
    db: Database, data: ShowData, cover: str | None = None, product_ids: Sequence[int] = ()
) -> int:
    now = int(time.time())
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT INTO shows (title, description, cover, starts_at, duration_minutes, "
            "host_id, stream_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                data.title,
                data.description,
                cover,
                data.starts_at,
                data.duration_minutes,
                data.host_id,
                new_stream_key(),
                now,
                now,
            ),
        )
        show_id = int(cur.lastrowid or 0)
        await conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show_id, pid, i) for i, pid in enumerate(product_ids)],
        )
    return show_id


async def update_show(
    db: Database, show_id: int, data: ShowData, cover: str | None, product_ids: Sequence[int]
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE shows SET title = ?, description = ?, cover = ?, starts_at = ?, "
            "duration_minutes = ?, host_id = ?, updated_at = ? WHERE id = ?",
            (
                data.title,
                data.description,
                cover,
                data.starts_at,
                data.duration_minutes,
                data.host_id,
                int(time.time()),
                show_id,
            ),
        )
        await conn.execute("DELETE FROM show_products WHERE show_id = ?", (show_id,))
        await conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show_id, pid, i) for i, pid in enumerate(product_ids)],
        )


async def delete_show(db: Database, show_id: int) -> None:
    await db.execute("DELETE FROM shows WHERE id = ?", (show_id,))


async def lineup(db: Database, show_id: int) -> list[Product]:
    rows = await db.fetchall(
        "SELECT p.* FROM show_products sp JOIN products p ON p.id = sp.product_id "
        "WHERE sp.show_id = ? ORDER BY sp.position",
        (show_id,),
    )
    return [Product.from_row(r) for r in rows]


async def rotate_stream_key(db: Database, show_id: int) -> str:
    key = new_stream_key()
    await db.execute(
        "UPDATE shows SET stream_key = ?, updated_at = ? WHERE id = ?",
        (key, int(time.time()), show_id),
    )
    return key


async def _transition(db: Database, show_id: int, to: str, stamp_column: str) -> None:
    now = int(time.time())
    async with db.transaction() as conn:
        async with conn.execute("SELECT status FROM shows WHERE id = ?", (show_id,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise BadTransition(f"show {show_id} does not exist")
        if (row[0], to) not in _TRANSITIONS:
            raise BadTransition(f"show {show_id} cannot go from {row[0]} to {to}")
        await conn.execute(
            f"UPDATE shows SET status = ?, {stamp_column} = ?, updated_at = ? WHERE id = ?",
            (to, now, now, show_id),
        )


async def go_live(db: Database, show_id: int) -> None:
    await _transition(db, show_id, "live", "live_started_at")


async def end_show(db: Database, show_id: int) -> None:
    await _transition(db, show_id, "ended", "live_ended_at")


# -- moderators an admin assigned to a show (appliance/accounts/access.py decides what they may do)


async def moderators_of(db: Database, show_id: int) -> list[int]:
    """The ids of the users assigned to moderate the show."""
    rows = await db.fetchall(
        "SELECT user_id FROM show_moderators WHERE show_id = ? ORDER BY user_id", (show_id,)
    )
    return [int(r["user_id"]) for r in rows]


async def is_moderator(db: Database, show_id: int, user_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT 1 FROM show_moderators WHERE show_id = ? AND user_id = ?", (show_id, user_id)
        )
    )


async def shows_of_moderator(db: Database, user_id: int) -> list[int]:
    """The ids of the shows the user is assigned to moderate."""
    rows = await db.fetchall(
        "SELECT show_id FROM show_moderators WHERE user_id = ? ORDER BY show_id", (user_id,)
    )
    return [int(r["show_id"]) for r in rows]


async def set_moderators(db: Database, show_id: int, user_ids: Sequence[int]) -> None:
    """Make `user_ids` the show's moderators, and only them."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM show_moderators WHERE show_id = ?", (show_id,))
        await conn.executemany(
            "INSERT INTO show_moderators (show_id, user_id) VALUES (?, ?)",
            [(show_id, uid) for uid in sorted(set(user_ids))],
        )
