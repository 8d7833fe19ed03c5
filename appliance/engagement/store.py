"""What polls, giveaways, single-use codes and answers keep in SQLite (migration 0007).

Votes come in bursts (a poll to a full room): rows are queued and written once a second
in one transaction, in the order they happened, like the room's chat. Ids of polls and
giveaways are given here, so nothing in the room waits for the database.

A winner's email is kept in `giveaway_contacts`, apart from the event log, and deleted
once its `delete_after` has passed (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

from appliance.engagement.giveaways import Draw, Giveaway
from appliance.engagement.polls import Poll
from appliance.storage.batches import flush_forever
from appliance.storage.db import Database

log = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
FORGET_EVERY = 600.0  # seconds between passes that delete expired contacts


class EngagementStore:
    def __init__(self, db: Database, contact_days: float = 30.0) -> None:
        self.db = db
        self.contact_days = contact_days
        self._pending: list[tuple[str, Sequence[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self.next_poll = 1
        self.next_giveaway = 1

    async def start(self) -> None:
        self.next_poll = int(await self.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM polls")) + 1
        self.next_giveaway = (
            int(await self.db.fetchval("SELECT COALESCE(MAX(id), 0) FROM giveaways")) + 1
        )
        await self.forget_contacts()
        self._task = asyncio.create_task(
            flush_forever(
                self.flush,
                self.forget_contacts,
                every=FLUSH_SECONDS,
                tidy_every=FORGET_EVERY,
                log=log,
                what="polls and giveaways",
            )
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def _queue(self, sql: str, params: Sequence[Any]) -> None:
        self._pending.append((sql, params))

    # -- polls -------------------------------------------------------------------------

    def new_poll_id(self) -> int:
        self.next_poll += 1
        return self.next_poll - 1

    def poll_started(
        self, show_id: int, poll: Poll, offset: float | None, user_id: int | None
    ) -> None:
        self._queue(
            "INSERT INTO polls (id, show_id, question, options, correct, counts, started_at, "
            "ends_at, show_offset, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                poll.id,
                show_id,
                poll.question,
                json.dumps(poll.options),
                poll.correct,
                json.dumps(poll.counts),
                time.time(),
                poll.ends_at,
                offset,
                user_id,
            ),
        )

    def vote(self, poll: Poll, viewer: str, option: int) -> None:
        self._queue(
            "INSERT OR IGNORE INTO poll_votes (poll_id, viewer, option, voted_at) "
            "VALUES (?, ?, ?, ?)",
            (poll.id, viewer, option, time.time()),
        )

    def poll_closed(self, poll: Poll) -> None:
        self._queue(
            "UPDATE polls SET counts = ?, closed_at = ? WHERE id = ?",
            (json.dumps(poll.counts), time.time(), poll.id),
        )

    # -- giveaways -----------------------------------------------------------------------

    def new_giveaway_id(self) -> int:
        self.next_giveaway += 1
        return self.next_giveaway - 1

    def giveaway_started(self, show_id: int, giveaway: Giveaway, user_id: int | None) -> None:
        self._queue(
            "INSERT INTO giveaways (id, show_id, prize, rule, claim_seconds, started_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                giveaway.id,
                show_id,
                giveaway.prize,
                giveaway.rule,
                giveaway.claim_seconds,
                time.time(),
                user_id,
            ),
        )

    def entered(self, giveaway: Giveaway, viewer: str, name: str) -> None:
        self._queue(
            "INSERT OR IGNORE INTO giveaway_entries (giveaway_id, viewer, name, entered_at) "
            "VALUES (?, ?, ?, ?)",
            (giveaway.id, viewer, name, time.time()),
        )

    def drawn(self, giveaway: Giveaway, draw: Draw) -> None:
        self._queue(
            "INSERT INTO giveaway_draws (giveaway_id, number, viewer, name, entrants, seed, "
            "seed_hash, entrants_hash, drawn_at, claim_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                giveaway.id,
                draw.number,
                draw.viewer,
                draw.name,
                draw.entrants,
                draw.seed.hex(),
                draw.seed_hash,
                draw.entrants_hash,
                draw.at,
                draw.claim_until,
            ),
        )

    def lapsed(self, giveaway: Giveaway, draw: Draw) -> None:
        self._queue(
            "UPDATE giveaway_draws SET lapsed_at = ? WHERE giveaway_id = ? AND number = ?",
            (time.time(), giveaway.id, draw.number),
        )

    def claimed(self, show_id: int, giveaway: Giveaway, draw: Draw, email: str) -> None:
        now = time.time()
        self._queue(
            "UPDATE giveaway_draws SET claimed_at = ? WHERE giveaway_id = ? AND number = ?",
            (now, giveaway.id, draw.number),
        )
        self._queue(
            "INSERT INTO giveaway_contacts (giveaway_id, show_id, name, email, created_at, "
            "delete_after) VALUES (?, ?, ?, ?, ?, ?)",
            (giveaway.id, show_id, draw.name, email, now, now + self.contact_days * 86400),
        )

    async def forget_contacts(self, now: float | None = None) -> int:
        """Delete winners' emails whose retention period is over; how many."""
        now = time.time() if now is None else now
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM giveaway_contacts WHERE delete_after <= ?", (now,)
            )
            return cursor.rowcount

    # -- single-use codes ------------------------------------------------------------------

    def codes_added(self, show_id: int, offer: str, codes: list[str]) -> None:
        for code in codes:
            self._queue(
                "INSERT OR IGNORE INTO offer_codes (show_id, offer, code) VALUES (?, ?, ?)",
                (show_id, offer, code),
            )

    def code_given(self, show_id: int, offer: str, code: str, viewer: str) -> None:
        self._queue(
            "UPDATE offer_codes SET viewer = ?, claimed_at = ? "
            "WHERE show_id = ? AND offer = ? AND code = ?",
            (viewer, time.time(), show_id, offer, code),
        )

    # -- reading -------------------------------------------------------------------------

    async def participants(self, show_id: int) -> tuple[set[str], set[str]]:
        """Who voted in any poll of the show, and who found a quiz's answer: a restarted
        room still knows who may enter a giveaway for voters or for the quiz."""
        rows = await self.db.fetchall(
            "SELECT v.viewer, v.option = p.correct AS right FROM poll_votes v "
            "JOIN polls p ON p.id = v.poll_id WHERE p.show_id = ?",
            (show_id,),
        )
        return {r["viewer"] for r in rows}, {r["viewer"] for r in rows if r["right"]}

    async def winners(self, show_id: int) -> set[str]:
        rows = await self.db.fetchall(
            "SELECT d.viewer FROM giveaway_draws d JOIN giveaways g ON g.id = d.giveaway_id "
            "WHERE g.show_id = ? AND d.lapsed_at IS NULL",
            (show_id,),
        )
        return {r["viewer"] for r in rows}

    async def last_poll(self, show_id: int) -> Poll | None:
        """The show's latest poll if it was never closed (the server stopped while it was
        open), with the votes it had; None otherwise."""
        row = await self.db.fetchone(
            "SELECT id, question, options, correct, ends_at FROM polls WHERE show_id = ? "
            "AND closed_at IS NULL AND id = (SELECT MAX(id) FROM polls WHERE show_id = ?)",
            (show_id, show_id),
        )
        if row is None:
            return None
        poll = Poll(
            int(row["id"]),
            row["question"],
            [str(o) for o in json.loads(row["options"])],
            float(row["ends_at"]),
            None if row["correct"] is None else int(row["correct"]),
        )
        for vote in await self.db.fetchall(
            "SELECT viewer, option FROM poll_votes WHERE poll_id = ? ORDER BY voted_at",
            (poll.id,),
        ):
            option = int(vote["option"])
            if 0 <= option < len(poll.options):
                poll.votes[vote["viewer"]] = option
                poll.counts[option] += 1
        return poll

    async def last_giveaway(self, show_id: int) -> Giveaway | None:
        """The show's latest giveaway as it stood: its entrants, its draws (which lapsed,
        whether the last was claimed) and the claiming winner's email if still kept."""
        row = await self.db.fetchone(
            "SELECT id, prize, rule, claim_seconds FROM giveaways WHERE show_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (show_id,),
        )
        if row is None:
            return None
        giveaway = Giveaway(int(row["id"]), row["prize"], row["rule"], int(row["claim_seconds"]))
        for entry in await self.db.fetchall(
            "SELECT viewer, name FROM giveaway_entries WHERE giveaway_id = ? ORDER BY entered_at",
            (giveaway.id,),
        ):
            giveaway.entrants[entry["viewer"]] = entry["name"]
        for d in await self.db.fetchall(
            "SELECT * FROM giveaway_draws WHERE giveaway_id = ? ORDER BY number", (giveaway.id,)
        ):
            giveaway.draws.append(
                Draw(
                    int(d["number"]),
                    d["viewer"],
                    d["name"],
                    int(d["entrants"]),
                    bytes.fromhex(d["seed"]),
                    d["seed_hash"],
                    d["entrants_hash"],
                    float(d["drawn_at"]),
                    float(d["claim_until"]),
                )
            )
            if d["lapsed_at"] is not None:
                giveaway.left_out.add(d["viewer"])
            giveaway.claimed = d["claimed_at"] is not None
        giveaway.open = not giveaway.draws
        if giveaway.claimed:
            giveaway.contact = await self.db.fetchval(
                "SELECT email FROM giveaway_contacts WHERE giveaway_id = ? "
                "ORDER BY created_at DESC LIMIT 1",
                (giveaway.id,),
            )
        return giveaway

    # -- writing -------------------------------------------------------------------------

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            async with self.db.transaction() as conn:
                for sql, params in batch:
                    await conn.execute(sql, params)
        except Exception:
            self._pending[:0] = batch
            raise
