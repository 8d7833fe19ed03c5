"""`Reminders`: sign-ups, the emails and the webhook, tied to the shows' lifecycle.

Going live tells `status_changed` (a listener of the live bridge), which only starts a
task: the emails and webhook deliveries are queued in the database and sent by their own
tasks, so nothing of it can delay the show. Saving a show on the admin form tells
`schedule_changed`, which announces a new or re-timed show to the webhook at once. A sweep
every 30 seconds is the safety net: it announces the shows scheduled some other way (the
command line, a save whose task failed), queues the hour-before emails, catches up on a
go-live or an end a stopped server missed, and deletes the addresses no longer needed.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import Any

from babel.support import NullTranslations

from appliance.catalog import calendar
from appliance.catalog.shop import Shop, get_meta
from appliance.catalog.shows import Show, get_show
from appliance.config import Config
from appliance.i18n.locales import format_when
from appliance.kpis.conversions import get_secret
from appliance.reminders import messages, signups, webhook
from appliance.reminders.outbox import EmailOutbox, Item, Loop
from appliance.reminders.smtp import Draft, SmtpSettings
from appliance.storage.db import Database

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0
HOUR = 3600
CHANNEL = "reminder"  # the utm_source of the emails' links: the KPIs' channel


class Reminders:
    def __init__(
        self,
        config: Config,
        db: Database,
        translations: dict[str, NullTranslations],
        shop: Callable[[], Awaitable[Shop]],
    ) -> None:
        self.config = config
        self.db = db
        self.translations = translations
        self.shop = shop
        email = config.email
        # "Notify me" is offered only when emails can be sent.
        self.enabled = bool(email.smtp_host and email.from_)
        if email.smtp_host and not email.from_:
            log.warning("email.smtp_host is set but email.from is empty: no reminder emails")
        self.base_url = config.base_url
        self._key = b""
        self.emails = EmailOutbox(
            db, self.smtp_settings, self._render, email.batch_size, email.retry_seconds
        )
        self.webhook = (
            webhook.WebhookOutbox(
                db, config.notify.webhook_url, self._webhook_secret, email.retry_seconds
            )
            if config.notify.webhook_url
            else None
        )
        self.sweeper = _Sweeper(self)
        self._tasks: set[asyncio.Task[Any]] = set()

    def smtp_settings(self) -> SmtpSettings:
        email = self.config.email
        return SmtpSettings(
            host=email.smtp_host,
            port=email.smtp_port,
            username=email.username,
            password=email.password,
            starttls=email.starttls,
            timeout=float(email.timeout_seconds),
            per_second=float(email.per_second),
        )

    async def start(self) -> None:
        secret = await get_meta(self.db, "secret_key")
        if not secret:
            raise RuntimeError("the app's secret key is not set yet")
        self._key = signups.derive_key(secret)
        if self.enabled:
            self.emails.start()
        if self.webhook is not None:
            self.webhook.start()
        self.sweeper.start()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.sweeper.close()
        await self.emails.close()
        if self.webhook is not None:
            await self.webhook.close()

    # -- links ---------------------------------------------------------------------------

    def confirm_url(self, signup: signups.Signup) -> str:
        token = signups.make_token(self._key, signups.CONFIRM, signup)
        return f"{self.base_url}/reminders/confirm/{token}"

    def unsubscribe_url(self, signup: signups.Signup) -> str:
        token = signups.make_token(self._key, signups.UNSUBSCRIBE, signup)
        return f"{self.base_url}/api/reminders/unsubscribe/{token}"

    def show_url(self, show_id: int) -> str:
        return f"{self.base_url}/shows/{show_id}?utm_source={CHANNEL}"

    # -- what viewers do -----------------------------------------------------------------

    async def sign_up(self, show: Show, email: str, lang: str, viewer: str) -> None:
        """A pending sign-up and its confirmation email (BadAddress for a bad address)."""
        address = signups.clean_email(email)
        lang = lang if lang in self.translations else "en"
        if await signups.sign_up(self.db, show.id, address, lang, viewer, int(time.time())):
            self.emails.wake()

    async def by_token(self, purpose: str, token: str) -> signups.Signup | None:
        return await signups.by_token(self.db, self._key, purpose, token)

    async def confirm(self, signup: signups.Signup) -> None:
        await signups.confirm(self.db, signup, time.time())

    async def unsubscribe(self, signup: signups.Signup) -> None:
        await signups.unsubscribe(self.db, signup.id)

    # -- the show's lifecycle ------------------------------------------------------------

    def status_changed(self, show_id: int, status: str, _live_since: float | None) -> None:
        """The live bridge's listener: queues, in a task of its own, and returns at once."""
        task = asyncio.ensure_future(self._status_changed(show_id, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def schedule_changed(self, show_id: int) -> None:
        """A show was scheduled or saved: announced (if new or re-timed) in a task of its
        own, at once rather than at the next sweep; returns at once."""
        task = asyncio.ensure_future(self._schedule_changed(show_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _schedule_changed(self, show_id: int) -> None:
        try:
            show = await get_show(self.db, show_id)
            if show is not None and show.status == "scheduled":
                await self._scheduled(show, time.time())
        except Exception:
            log.exception("reminders: show %s could not be announced; the sweep will", show_id)

    async def _status_changed(self, show_id: int, status: str) -> None:
        try:
            show = await get_show(self.db, show_id)
            if show is None:
                return
            if status == "live":
                await self.went_live(show)
            elif status == "ended":
                await self.ended(show)
        except Exception:
            log.exception("reminders: show %s going %s could not be queued", show_id, status)

    async def _claim(self, conn: Any, show: Show, kind: str) -> bool:
        cur = await conn.execute(
            "INSERT OR IGNORE INTO show_notices (show_id, kind, starts_at, done_at) "
            "VALUES (?, ?, ?, ?)",
            (show.id, kind, show.starts_at, int(time.time())),
        )
        return bool(cur.rowcount)

    async def _queue_mailing(self, conn: Any, show: Show, message: str) -> None:
        if not self.enabled:
            return
        await conn.execute(
            "INSERT OR IGNORE INTO reminder_outbox (signup_id, message, next_attempt_at) "
            "SELECT id, ?, ? FROM reminder_signups WHERE show_id = ? AND confirmed_at IS NOT NULL",
            (message, time.time(), show.id),
        )

    async def _queue_webhook(self, conn: Any, show: Show, event: str, status: str) -> None:
        if self.webhook is None:
            return
        await conn.execute(
            "INSERT INTO webhook_outbox (event, body, next_attempt_at, created_at) "
            "VALUES (?, ?, ?, ?)",
            (event, webhook.body(event, show, status, self.base_url), time.time(), time.time()),
        )

    def _wake(self) -> None:
        self.emails.wake()
        if self.webhook is not None:
            self.webhook.wake()

    async def went_live(self, show: Show) -> None:
        async with self.db.transaction() as conn:
            if not await self._claim(conn, show, "live"):
                return
            await self._queue_mailing(conn, show, "live")
            await conn.execute(  # too late for "in an hour"
                "DELETE FROM reminder_outbox WHERE message = 'hour' AND signup_id IN "
                "(SELECT id FROM reminder_signups WHERE show_id = ?)",
                (show.id,),
            )
            await self._queue_webhook(conn, show, "show.live", "live")
        self._wake()

    async def ended(self, show: Show) -> None:
        async with self.db.transaction() as conn:
            if not await self._claim(conn, show, "ended"):
                return
            await self._queue_webhook(conn, show, "show.ended", "ended")
        self._wake()

    async def sweep(self, now: float) -> None:
        """What the clock brings: announcements, the hour-before emails, catching up."""
        for show in await self._shows(
            "status = 'scheduled' AND (NOT EXISTS (SELECT 1 FROM show_notices n WHERE "
            "n.show_id = s.id AND n.kind = 'scheduled' AND n.starts_at = s.starts_at) OR "
            "(s.starts_at - ? <= ? AND NOT EXISTS (SELECT 1 FROM show_notices n WHERE "
            "n.show_id = s.id AND n.kind = 'hour')))",
            (HOUR, now),
        ):
            await self._scheduled(show, now)
        for status in ("live", "ended"):
            for show in await self._shows(
                "status = ? AND NOT EXISTS (SELECT 1 FROM show_notices n WHERE "
                "n.show_id = s.id AND n.kind = ?)",
                (status, status),
            ):
                await (self.went_live(show) if status == "live" else self.ended(show))
        if await signups.purge(self.db, now, self.config.email.keep_days):
            log.info("reminders: addresses past their retention deleted")

    async def _shows(self, where: str, params: tuple[Any, ...]) -> list[Show]:
        rows = await self.db.fetchall(f"SELECT s.* FROM shows s WHERE {where}", params)
        return [Show.from_row(r) for r in rows]

    async def _scheduled(self, show: Show, now: float) -> None:
        async with self.db.transaction() as conn:
            cur = await conn.execute(
                "SELECT kind, starts_at FROM show_notices WHERE show_id = ?", (show.id,)
            )
            done = {row["kind"]: row["starts_at"] for row in await cur.fetchall()}
            if done.get("scheduled") != show.starts_at:  # new, or its time changed
                await conn.execute(
                    "DELETE FROM show_notices WHERE show_id = ? AND kind IN ('scheduled', 'hour')",
                    (show.id,),
                )
                done.pop("hour", None)
                await self._claim(conn, show, "scheduled")
                await self._queue_webhook(conn, show, "show.scheduled", "scheduled")
            if "hour" not in done and now >= show.starts_at - HOUR:
                await self._claim(conn, show, "hour")
                cur = await conn.execute(
                    "SELECT hour_before FROM reminder_show_settings WHERE show_id = ?",
                    (show.id,),
                )
                own = await cur.fetchone()
                wanted = self.config.email.hour_before if own is None else bool(own[0])
                if now < show.starts_at and wanted:
                    await self._queue_mailing(conn, show, "hour")
        self._wake()

    # -- the emails ----------------------------------------------------------------------

    async def _render(self, items: list[Item]) -> list[Draft | None]:
        shop = await self.shop()
        marks = ",".join("?" * len(items))
        rows = await self.db.fetchall(
            f"SELECT * FROM reminder_signups WHERE id IN ({marks})",
            [item.signup_id for item in items],
        )
        found = {int(r["id"]): signups.Signup.from_row(r) for r in rows}
        shows: dict[int, Show | None] = {}
        out: list[Draft | None] = []
        for item in items:
            signup = found.get(item.signup_id)
            if signup is None:
                out.append(None)
                continue
            if signup.show_id not in shows:
                shows[signup.show_id] = await get_show(self.db, signup.show_id)
            show = shows[signup.show_id]
            wanted = {"confirm": "scheduled", "hour": "scheduled", "live": "live"}
            if show is None or show.status != wanted.get(item.message):
                out.append(None)  # no longer worth sending
            else:
                out.append(functools.partial(self._email, item.message, signup, show, shop))
        return out

    def _email(self, kind: str, signup: signups.Signup, show: Show, shop: Shop) -> EmailMessage:
        """The email itself: built in the sending thread (pure, no I/O)."""
        lang = signup.lang if signup.lang in self.translations else "en"
        now = time.time()
        page = f"{self.base_url}/shows/{show.id}"
        content = messages.Content(
            sender=self.config.email.from_,
            shop=shop.name,
            title=show.title,
            when=format_when(show.starts_at, shop.timezone, lang, "long"),
            show_url=self.show_url(show.id),
            ics=calendar.show_event(
                show_id=show.id,
                title=show.title,
                description=show.description,
                starts_at=show.starts_at,
                ends_at=show.ends_at,
                url=page,
                shop_name=shop.name,
                now=int(now),
            ),
        )
        return messages.build(
            kind,
            signup.email,
            content,
            self.translations[lang].gettext,
            confirm_url=self.confirm_url(signup),
            unsubscribe_url=self.unsubscribe_url(signup),
            now=now,
        )

    async def _webhook_secret(self) -> str:
        return self.config.notify.webhook_secret or await get_secret(self.db)


class _Sweeper(Loop):
    def __init__(self, reminders: Reminders) -> None:
        super().__init__("reminders sweep")
        self.reminders = reminders

    async def step(self) -> float:
        await self.reminders.sweep(time.time())
        return SWEEP_SECONDS
