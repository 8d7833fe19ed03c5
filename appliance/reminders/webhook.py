"""The notify webhook: a signed JSON POST to `notify.webhook_url` when a show is
scheduled (or its start time changes), goes live and ends, for the retailer's own email
and SMS tools (docs/reminders.md).

Signed like the order reports: `X-Vitrine-Signature: sha256=<HMAC-SHA256 of the body>`,
with `notify.webhook_secret`, or the conversion secret of Settings when that is empty.
Deliveries wait in `webhook_outbox` until the receiver answers 2xx, retried with a
growing delay; the POST runs in a thread of its own with a timeout.
"""

from __future__ import annotations

import functools
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.catalog.shows import Show
from appliance.kpis.conversions import SIGNATURE_HEADER, sign
from appliance.reminders.outbox import Loop, backoff, idle_wait
from appliance.reminders.smtp import in_daemon_thread
from appliance.storage.db import Database

log = logging.getLogger(__name__)

EVENTS = ("show.scheduled", "show.live", "show.ended")
EVENT_HEADER = "X-Vitrine-Event"
DELIVERY_HEADER = "X-Vitrine-Delivery"
MAX_ATTEMPTS = 10
TIMEOUT = 10.0
BATCH = 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer that is not 2xx: the body is not sent on to elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def post(url: str, body: bytes, headers: dict[str, str]) -> str | None:
    """POST (blocking); None when the receiver answered 2xx, else what went wrong."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
    except (OSError, ValueError) as exc:
        return f"cannot reach the webhook: {exc}"[:300]
    return None if 200 <= status < 300 else f"the webhook answered {status}"


def body(event: str, show: Show, status: str, base_url: str) -> str:
    """The JSON a delivery carries (docs/reminders.md)."""
    payload = {
        "event": event,
        "ts": int(time.time()),
        "show": {
            "id": show.id,
            "title": show.title,
            "description": show.description,
            "status": status,
            "starts_at": show.starts_at,
            "ends_at": show.ends_at,
            "url": f"{base_url}/shows/{show.id}",
        },
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


class WebhookOutbox(Loop):
    def __init__(
        self,
        db: Database,
        url: str,
        secret: Callable[[], Awaitable[str]],
        retry_seconds: float,
    ) -> None:
        super().__init__("notify webhook")
        self.db = db
        self.url = url
        self.secret = secret
        self.retry_seconds = retry_seconds
        self.delivered = 0

    async def step(self) -> float:
        now = time.time()
        rows = await self.db.fetchall(
            "SELECT id, event, body, attempts FROM webhook_outbox WHERE next_attempt_at <= ? "
            "ORDER BY id LIMIT ?",
            (now, BATCH),
        )
        if not rows:
            upcoming = await self.db.fetchval("SELECT MIN(next_attempt_at) FROM webhook_outbox")
            return idle_wait(upcoming, now)
        secret = await self.secret()
        for row in rows:
            body = str(row["body"]).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Vitrine",
                EVENT_HEADER: row["event"],
                DELIVERY_HEADER: str(row["id"]),
                SIGNATURE_HEADER: sign(secret, body),
            }
            problem = await in_daemon_thread(functools.partial(post, self.url, body, headers))
            await self._settle(int(row["id"]), int(row["attempts"]), problem)
        return 0.0 if len(rows) == BATCH else 0.05

    async def _settle(self, delivery: int, attempts: int, problem: str | None) -> None:
        if problem is None:
            self.delivered += 1
            await self.db.execute("DELETE FROM webhook_outbox WHERE id = ?", (delivery,))
        elif attempts + 1 >= MAX_ATTEMPTS:
            log.warning("notify webhook: delivery %d given up: %s", delivery, problem)
            await self.db.execute("DELETE FROM webhook_outbox WHERE id = ?", (delivery,))
        else:
            log.info("notify webhook: delivery %d failed (%s): retrying", delivery, problem)
            await self.db.execute(
                "UPDATE webhook_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? "
                "WHERE id = ?",
                (
                    attempts + 1,
                    time.time() + backoff(attempts + 1, self.retry_seconds),
                    problem,
                    delivery,
                ),
            )
