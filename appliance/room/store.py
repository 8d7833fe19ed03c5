"""What the live room keeps in SQLite, written in batches by one background task.

Chat is the busiest writer in Vitrine: every message would otherwise be its own
transaction. The room appends rows to this buffer; one flush a second writes them all
in a single transaction. At most about a second of chat is at risk on a crash; nothing
is lost on a clean shutdown (the app flushes before closing the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from appliance.room.sanctions import Sanction
from appliance.storage.batches import flush_forever
from appliance.storage.db import Database

log = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
FORGET_EVERY = 60.0  # seconds between passes that erase addresses no longer needed
OFFER_ADDRESS_SECONDS = 3 * 3600  # an offer lasts at most 2 hours: its claims' addresses less


@dataclass
class Pending:
    chats: list[tuple[Any, ...]] = field(default_factory=list)
    flags: list[tuple[str, int]] = field(default_factory=list)  # (column, message id)
    # In order: (show id, product id or None to unpin, at, show offset)
    pins: list[tuple[int, int | None, float, float | None]] = field(default_factory=list)
    actions: list[tuple[Any, ...]] = field(default_factory=list)
    claims: list[tuple[Any, ...]] = field(default_factory=list)  # offer_claims rows
    answers: list[tuple[Any, ...]] = field(default_factory=list)  # (text, at, live at, id)

    def __bool__(self) -> bool:
        return bool(
            self.chats or self.flags or self.pins or self.actions or self.claims or self.answers
        )


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending = Pending()
        self._task: asyncio.Task[None] | None = None
        self.next_id = 1

    async def start(self) -> None:
        self.next_id = (
            int(await self.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM chat_messages")) + 1
        )
        await self.forget_addresses()
        self._task = asyncio.create_task(
            flush_forever(
                self.flush,
                self.forget_addresses,
                every=FLUSH_SECONDS,
                tidy_every=FORGET_EVERY,
                log=log,
                what="the live room's records",
            )
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def new_message_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    # -- what the room records ---------------------------------------------------

    def chat(
        self, message: dict[str, Any], show_id: int, viewer: str, staff_user: int | None
    ) -> None:
        self._pending.chats.append(
            (
                message["id"],
                show_id,
                viewer,
                message["name"],
                message["text"],
                staff_user,
                int(message["question"]),
                message["at"],
                time.time(),
            )
        )

    def flag(self, column: str, message_id: int) -> None:
        assert column in ("deleted", "answered")
        self._pending.flags.append((column, message_id))

    def answer(self, message_id: int, text: str | None, live: bool) -> None:
        """A question's written answer, or the moment it was answered on camera."""
        now = time.time()
        self._pending.answers.append((text, now, now if live else None, message_id))

    def pin(self, show_id: int, product_id: int | None, offset: float | None) -> None:
        """Pin a product (closing the open pin), or unpin with product_id None."""
        self._pending.pins.append((show_id, product_id, time.time(), offset))

    def action(
        self, show_id: int, user_id: int | None, action: str, target: str, details: dict[str, Any]
    ) -> None:
        self._pending.actions.append(
            (show_id, user_id, action, target, json.dumps(details), time.time())
        )

    # -- writing -----------------------------------------------------------------

    async def flush(self) -> None:
        batch, self._pending = self._pending, Pending()
        if not batch:
            return
        try:
            async with self.db.transaction() as conn:
                await conn.executemany(
                    "INSERT INTO chat_messages (id, show_id, viewer, name, text, staff_user_id, "
                    "question, show_offset, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    batch.chats,
                )
                for column, message_id in batch.flags:
                    await conn.execute(
                        f"UPDATE chat_messages SET {column} = 1 WHERE id = ?", (message_id,)
                    )
                await conn.executemany(
                    "UPDATE chat_messages SET answer = ?, answered_at = ?, "
                    "answered_live_at = COALESCE(answered_live_at, ?) WHERE id = ?",
                    batch.answers,
                )
                # Each pin closes the show's open pin, then opens its own (in order).
                for show_id, product_id, at, offset in batch.pins:
                    await conn.execute(
                        "UPDATE show_pins SET unpinned_at = ? "
                        "WHERE show_id = ? AND unpinned_at IS NULL",
                        (at, show_id),
                    )
                    if product_id is not None:
                        await conn.execute(
                            "INSERT INTO show_pins (show_id, product_id, pinned_at, show_offset) "
                            "VALUES (?, ?, ?, ?)",
                            (show_id, product_id, at, offset),
                        )
                await conn.executemany(
                    "INSERT INTO moderation_log (show_id, user_id, action, target, details, at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    batch.actions,
                )
                await conn.executemany(
                    "INSERT INTO offer_claims (show_id, offer, viewer, address_hint, claimed_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    batch.claims,
                )
        except Exception:
            # Keep the rows for the next flush rather than lose them.
            self._pending.chats[:0] = batch.chats
            self._pending.flags[:0] = batch.flags
            self._pending.pins[:0] = batch.pins
            self._pending.actions[:0] = batch.actions
            self._pending.claims[:0] = batch.claims
            self._pending.answers[:0] = batch.answers
            raise

    # -- reading -------------------------------------------------------------------

    async def recent(self, show_id: int, limit: int = 50) -> list[tuple[dict[str, Any], str]]:
        """The last messages of a show, oldest first, each with its author's viewer id."""
        rows = await self.db.fetchall(
            "SELECT * FROM (SELECT * FROM chat_messages WHERE show_id = ? AND deleted = 0 "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            (show_id, limit),
        )
        return [
            (
                {
                    "type": "chat",
                    "id": r["id"],
                    "name": r["name"],
                    "text": r["text"],
                    "staff": r["staff_user_id"] is not None,
                    "question": bool(r["question"]),
                    "answered": bool(r["answered"]),
                    "at": r["show_offset"],
                    **({"answer": r["answer"]} if r["answer"] else {}),
                },
                r["viewer"],
            )
            for r in rows
        ]

    async def open_pin(self, show_id: int) -> int | None:
        value = await self.db.fetchval(
            "SELECT product_id FROM show_pins WHERE show_id = ? AND unpinned_at IS NULL "
            "ORDER BY id DESC LIMIT 1",
            (show_id,),
        )
        return None if value is None else int(value)

    # -- sanctions and offer claims (rare, written at once: the room needs their ids) --

    async def add_sanction(
        self,
        show_id: int,
        kind: str,
        viewer: str,
        name: str,
        address_hint: str,
        hint_expires_at: float | None,
        whole_address: bool,
        created_by: int | None,
        expires_at: float | None,
    ) -> Sanction:
        now = time.time()
        sanction_id = await self.db.execute(
            "INSERT INTO room_sanctions (show_id, kind, viewer, name, address_hint, "
            "hint_expires_at, whole_address, created_by, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                show_id,
                kind,
                viewer,
                name,
                address_hint,
                hint_expires_at,
                int(whole_address),
                created_by,
                now,
                expires_at,
            ),
        )
        return Sanction(
            sanction_id,
            kind,
            viewer,
            name,
            address_hint,
            hint_expires_at,
            whole_address,
            now,
            expires_at,
        )

    async def lift_sanction(self, show_id: int, sanction_id: int) -> None:
        await self.db.execute(
            "UPDATE room_sanctions SET lifted_at = ? WHERE id = ? AND show_id = ?",
            (time.time(), sanction_id, show_id),
        )

    async def sanctions(self, show_id: int) -> list[Sanction]:
        """The show's sanctions still in force (not lifted, not expired)."""
        rows = await self.db.fetchall(
            "SELECT * FROM room_sanctions WHERE show_id = ? AND lifted_at IS NULL "
            "AND (expires_at IS NULL OR expires_at > ?) ORDER BY id",
            (show_id, time.time()),
        )
        return [
            Sanction(
                r["id"],
                r["kind"],
                r["viewer"],
                r["name"],
                r["address_hint"],
                r["hint_expires_at"],
                bool(r["whole_address"]),
                r["created_at"],
                r["expires_at"],
            )
            for r in rows
        ]

    async def forget_addresses(self, now: float | None = None) -> None:
        """Erase addresses kept only for a while: a sanction's hint once it expired (a
        whole-address ban keeps its address until lifted), an offer claim's once the
        offer is long over. Vitrine keeps no viewer's address longer than it uses it."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE room_sanctions SET address_hint = '', hint_expires_at = NULL "
                "WHERE address_hint != '' AND (lifted_at IS NOT NULL OR (whole_address = 0 "
                "AND (hint_expires_at IS NULL OR hint_expires_at <= ?)))",
                (now,),
            )
            await conn.execute(
                "UPDATE offer_claims SET address_hint = '' "
                "WHERE address_hint != '' AND claimed_at <= ?",
                (now - OFFER_ADDRESS_SECONDS,),
            )

    def claim(self, show_id: int, offer: str, viewer: str, address: str) -> None:
        self._pending.claims.append((show_id, offer, viewer, address, time.time()))
