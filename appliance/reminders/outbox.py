"""The outbox: every email waits in `reminder_outbox` until it is sent, so a restart
loses nothing. One task takes the due ones in batches, sends each batch through SMTP in
a thread (smtp.py) at the configured pace, and puts the ones refused for now back with a
growing delay. Nothing here is awaited by the show's lifecycle: a slow or hung mail
server delays the emails, never going live.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from appliance.reminders import smtp
from appliance.storage.db import Database

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
IDLE_SECONDS = 30.0


def backoff(attempts: int, base: float) -> float:
    """Seconds before try number `attempts` + 1: base, 4 x base, 16 x base... at most 6 h."""
    return float(min(base * 4 ** max(0, attempts - 1), 6 * 3600.0))


def idle_wait(next_due: float | None, now: float) -> float:
    """How long a queue with nothing due may sleep: until its next item, at most 30 s."""
    return IDLE_SECONDS if next_due is None else max(0.05, min(IDLE_SECONDS, next_due - now))


@dataclass(frozen=True)
class Item:
    id: int
    signup_id: int
    message: str
    attempts: int


# What builds the email of each outbox item (in the sending thread: the email package is
# slow enough to stall the event loop for a batch), None when it is no longer worth sending.
Render = Callable[[list[Item]], Awaitable[list[smtp.Draft | None]]]


class Loop:
    """A task that runs `step` whenever woken or `IDLE_SECONDS` have passed; `step`
    returns True while there is more to do at once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def step(self) -> float:
        """Do what is due; return how long to wait before looking again."""
        raise NotImplementedError

    async def _run(self) -> None:
        while True:
            try:
                wait = await self.step()
            except Exception:
                log.exception("%s: a pass failed; trying again shortly", self.name)
                wait = 5.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()


class EmailOutbox(Loop):
    def __init__(
        self,
        db: Database,
        settings: Callable[[], smtp.SmtpSettings],
        render: Render,
        batch_size: int,
        retry_seconds: float,
    ) -> None:
        super().__init__("reminder emails")
        self.db = db
        self.settings = settings
        self.render = render
        self.batch_size = batch_size
        self.retry_seconds = retry_seconds
        self.sent = 0
        self.dropped = 0

    async def step(self) -> float:
        now = time.time()
        rows = await self.db.fetchall(
            "SELECT id, signup_id, message, attempts FROM reminder_outbox "
            "WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (now, self.batch_size),
        )
        if not rows:
            upcoming = await self.db.fetchval("SELECT MIN(next_attempt_at) FROM reminder_outbox")
            return idle_wait(upcoming, now)
        items = [Item(r["id"], r["signup_id"], r["message"], r["attempts"]) for r in rows]
        drafts = await self.render(items)
        todo = [(item, d) for item, d in zip(items, drafts, strict=True) if d is not None]
        stale = [item.id for item, d in zip(items, drafts, strict=True) if d is None]
        settings = self.settings()
        outcomes = (
            await smtp.in_daemon_thread(lambda: smtp.send_batch(settings, [m for _, m in todo]))
            if todo
            else []
        )
        await self._settle(todo, outcomes, stale)
        return 0.0 if len(rows) == self.batch_size else 0.05

    async def _settle(
        self,
        todo: list[tuple[Item, smtp.Draft]],
        outcomes: list[smtp.Outcome],
        stale: list[int],
    ) -> None:
        done: list[int] = list(stale)
        retry: list[tuple[float, int, str, int]] = []
        now = time.time()
        for (item, _message), outcome in zip(todo, outcomes, strict=True):
            if outcome.status == smtp.SENT:
                done.append(item.id)
                self.sent += 1
            elif outcome.status == smtp.TEMPORARY and item.attempts + 1 < MAX_ATTEMPTS:
                attempts = item.attempts + 1
                retry.append(
                    (now + backoff(attempts, self.retry_seconds), attempts, outcome.detail, item.id)
                )
                log.info("reminder email %d not sent yet (%s): retrying", item.id, outcome.detail)
            else:
                done.append(item.id)
                self.dropped += 1
                log.warning("reminder email %d given up: %s", item.id, outcome.detail)
        async with self.db.transaction() as conn:
            await conn.executemany("DELETE FROM reminder_outbox WHERE id = ?", [(i,) for i in done])
            await conn.executemany(
                "UPDATE reminder_outbox SET next_attempt_at = ?, attempts = ?, last_error = ? "
                "WHERE id = ?",
                retry,
            )
