"""A show's own reminder settings: whether its sign-ups get the hour-before email. A show
that has none follows `email.hour_before`."""

from __future__ import annotations

from appliance.storage.db import Database


async def hour_before(db: Database, show_id: int, default: bool) -> bool:
    value = await db.fetchval(
        "SELECT hour_before FROM reminder_show_settings WHERE show_id = ?", (show_id,)
    )
    return default if value is None else bool(value)


async def set_hour_before(db: Database, show_id: int, value: bool) -> None:
    await db.execute(
        "INSERT INTO reminder_show_settings (show_id, hour_before) VALUES (?, ?) "
        "ON CONFLICT (show_id) DO UPDATE SET hour_before = excluded.hour_before",
        (show_id, int(value)),
    )
