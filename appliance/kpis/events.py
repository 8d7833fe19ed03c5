"""The KPI event log: what viewer pages and the live room report, written in batches.

Nothing here writes one row per request: `EventLog.add` appends to a buffer in memory
and one task writes the buffer every second in one transaction. At most about a second
of events is at risk on a crash; a clean shutdown flushes first. A full buffer (the
database cannot keep up) refuses new events rather than growing without bound.

`parse_beacon` checks what a page sent; it raises BadEvent with a message for the 400.
No IP address or personal data goes into the log (docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from appliance.storage.db import Database

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_BUFFER = 200_000
MAX_BODY = 8 * 1024
MAX_BATCH = 20
MAX_AGE = 24 * 3600.0  # a page may report what happened while it was offline
MAX_SKEW = 30.0  # a phone's clock may be a little ahead of the server's
PAGE_KINDS = frozenset(
    {
        "join",
        "heartbeat",
        "leave",
        "product_click",
        "add_to_cart",
        "checkout",
        "calendar_add",
        "replay_view",
    }
)
MAX_CART_LINES = 50
MAX_ID = 2**31 - 1
MAX_PRICE = 10**9  # minor units: ten million in the shop's currency
MAX_DEPTH = 16  # reports are flat objects: deeper nesting is refused before parsing


class BadEvent(ValueError):
    """What was wrong with an event, said to whoever sent it."""


class LogFull(RuntimeError):
    pass


@dataclass(frozen=True)
class Event:
    show_id: int
    ts: float
    viewer: str
    kind: str
    props: dict[str, Any]


def device_of(user_agent: str) -> str:
    """mobile, tablet or desktop, from a User-Agent header (coarse on purpose)."""
    ua = user_agent.lower()
    if "ipad" in ua or "tablet" in ua or ("android" in ua and "mobile" not in ua):
        return "tablet"
    if "mobi" in ua or "iphone" in ua or "ipod" in ua or "android" in ua:
        return "mobile"
    return "desktop"


def channel_of(utm_source: Any, referrer: Any, own_host: str) -> str:
    """`utm_source` when the page address had one, else the linking page's host, else
    direct. Links between Vitrine's own pages do not change the channel."""
    if isinstance(utm_source, str) and utm_source.strip():
        return utm_source.strip().lower()[:64]
    if isinstance(referrer, str) and referrer:
        host = (urlsplit(referrer[:512]).hostname or "").lower()
        if host.startswith("www."):
            host = host[4:]
        if host and host != own_host.lower().removeprefix("www."):
            return host[:64]
    return "direct"


def _whole(value: Any, low: int, high: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadEvent(f"{name} must be a whole number from {low} to {high}")
    return value


def too_deep(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether the arrays and objects of a JSON text nest deeper than `limit` (brackets
    inside strings do not count): checked before parsing, so a deep body never reaches
    the recursive parser."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # not even that many brackets in all
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def json_object(body: bytes, max_bytes: int) -> dict[str, Any]:
    """A report's body as a JSON object; BadEvent says what is wrong with it. The one
    reader of every JSON body Vitrine accepts: size and nesting are bounded first."""
    if len(body) > max_bytes:
        raise BadEvent(f"the report is larger than {max_bytes} bytes")
    if too_deep(body):
        raise BadEvent(f"the report nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadEvent("the report is not JSON") from None
    if not isinstance(data, dict):
        raise BadEvent("the report must be a JSON object")
    return data


def timestamp(value: Any, now: float, skew: float, max_age: float, age_text: str) -> float:
    """A reported time in seconds since 1970: not further ahead than `skew`, nor older
    than `max_age` (said as `age_text`)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadEvent("ts must be a number of seconds since 1970")
    if value > now + skew:
        raise BadEvent("ts is in the future")
    if value < now - max_age:
        raise BadEvent(f"ts is more than {age_text} old")
    return float(value)


PATHS = ("webrtc", "hls")
# The host of the shop page that shows the player (embed.js): a name or [IPv6], and a port.
EMBED_HOST = re.compile(r"^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$")


def _props(kind: str, raw: Mapping[str, Any], user_agent: str, own_host: str) -> dict[str, Any]:
    """The props kept for an event of `kind`; anything else the page sent is dropped."""
    if kind == "join":
        props = {
            "device": device_of(user_agent),
            "channel": channel_of(raw.get("utm_source"), raw.get("referrer"), own_host),
        }
        if raw.get("path") in PATHS:  # how the live player plays the show
            props["path"] = raw["path"]
        embed = raw.get("embed")
        if isinstance(embed, str) and EMBED_HOST.match(embed):
            # The player on the shop's own site (embed.js): that page's host.
            props["channel"] = "embed"
            props["host"] = embed.lower()
        return props
    if kind == "product_click":
        return {"product": _whole(raw.get("product"), 1, MAX_ID, "product")}
    if kind == "add_to_cart":
        # The price the page sends is checked but not kept: `catalogue_prices` puts the
        # catalogue's price in its place, so a made-up price cannot back a beacon order.
        return {
            "product": _whole(raw.get("product"), 1, MAX_ID, "product"),
            "quantity": _whole(raw.get("quantity", 1), 1, 999, "quantity"),
            "price": _whole(raw.get("price", 0), 0, MAX_PRICE, "price"),
        }
    if kind == "checkout":
        # The cart as [[product, quantity], ...]; `catalogue_prices` sets the total from
        # the catalogue (the page's own total is not kept).
        lines = raw.get("products")
        if not isinstance(lines, list) or not 1 <= len(lines) <= MAX_CART_LINES:
            raise BadEvent(f"products must list 1 to {MAX_CART_LINES} [product, quantity] pairs")
        products = []
        for line in lines:
            if not isinstance(line, list) or len(line) != 2:
                raise BadEvent("each product must be a [product, quantity] pair")
            products.append(
                [_whole(line[0], 1, MAX_ID, "product"), _whole(line[1], 1, 999, "quantity")]
            )
        return {"products": products, "items": sum(q for _p, q in products), "total": 0}
    return {}


async def catalogue_prices(
    db: Database, events: list[tuple[float, str, dict[str, Any]]]
) -> list[tuple[float, str, dict[str, Any]]]:
    """The events with each add_to_cart's price replaced by the product's price in the
    catalogue (0 for a product the catalogue does not have), and each checkout's total
    computed from those prices: what a viewer's cart is worth is the server's figure,
    never the page's."""
    wanted = {int(p["product"]) for _ts, k, p in events if k == "add_to_cart"}
    wanted |= {int(line[0]) for _ts, k, p in events if k == "checkout" for line in p["products"]}
    if not wanted:
        return events
    marks = ",".join("?" * len(wanted))
    rows = await db.fetchall(
        f"SELECT id, price_minor FROM products WHERE id IN ({marks})", tuple(sorted(wanted))
    )
    prices = {int(r["id"]): int(r["price_minor"]) for r in rows}

    def priced(kind: str, props: dict[str, Any]) -> dict[str, Any]:
        if kind == "add_to_cart":
            return {**props, "price": prices.get(int(props["product"]), 0)}
        if kind == "checkout":
            total = sum(prices.get(int(p), 0) * int(q) for p, q in props["products"])
            return {**props, "total": total}
        return props

    return [(ts, kind, priced(kind, props)) for ts, kind, props in events]


def parse_beacon(
    body: bytes, viewer: str, user_agent: str, own_host: str, now: float
) -> tuple[int, list[tuple[float, str, dict[str, Any]]]]:
    """A page's report: `{"show": 7, "kind": "join", "props": {...}}`, or several events
    of one show as `{"show": 7, "events": [{"kind": ..., "props": ..., "ts": ...}]}`.
    Returns the show and its events as (ts, kind, props)."""
    data = json_object(body, MAX_BODY)
    show = _whole(data.get("show"), 1, MAX_ID, "show")
    items = data.get("events", [data])
    if not isinstance(items, list) or not items:
        raise BadEvent("events must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise BadEvent(f"at most {MAX_BATCH} events per report")
    parsed = []
    for item in items:
        if not isinstance(item, dict):
            raise BadEvent("each event must be a JSON object")
        kind = item.get("kind")
        if kind not in PAGE_KINDS:
            raise BadEvent(f"unknown event kind {str(kind)[:32]!r}")
        raw = item.get("props", {})
        if not isinstance(raw, dict):
            raise BadEvent("props must be a JSON object")
        ts = timestamp(item.get("ts", now), now, MAX_SKEW, MAX_AGE, "a day")
        parsed.append((ts, str(kind), _props(str(kind), raw, user_agent, own_host)))
    if not viewer:
        raise BadEvent("no viewer id: load the show page first")
    return show, parsed


class EventLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._rows: list[tuple[int, float, str, str, str]] = []
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.ingested: Counter[str] = Counter()  # events taken in, by kind (for /metrics)
        self.dropped = 0  # events refused because the buffer was full

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    def add(self, show_id: int, ts: float, viewer: str, kind: str, props: dict[str, Any]) -> None:
        if len(self._rows) >= MAX_BUFFER:
            self.dropped += 1
            raise LogFull("the event log is not keeping up")
        self.ingested[kind] += 1
        self._rows.append((show_id, ts, viewer, kind, json.dumps(props, separators=(",", ":"))))

    def add_now(self, show_id: int, viewer: str, kind: str, props: dict[str, Any]) -> None:
        """For the live room: an event that happened now; dropped (and logged) when full."""
        try:
            self.add(show_id, time.time(), viewer, kind, props)
        except LogFull:
            log.warning("event log full: a %s event of show %s was dropped", kind, show_id)

    @property
    def pending(self) -> int:
        return len(self._rows)

    async def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            # Events of a show deleted meanwhile are skipped, not a failed batch.
            await self.db.executemany(
                "INSERT INTO events (show_id, ts, viewer, kind, props) "
                "SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM shows WHERE id = ?)",
                [(*row, row[0]) for row in rows],
            )
            self.written += len(rows)
        except Exception:
            log.exception("event log: %d events could not be written; retrying", len(rows))
            self._rows = rows[: MAX_BUFFER - len(self._rows)] + self._rows

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()


async def show_events(db: Database, show_id: int) -> list[dict[str, Any]]:
    """A show's events for `appliance.kpis.engine.compute`, with its orders as purchase events."""
    rows = await db.fetchall(
        "SELECT ts, viewer, kind, props FROM events WHERE show_id = ? ORDER BY ts, id", (show_id,)
    )
    events = [
        {"ts": r["ts"], "viewer": r["viewer"], "kind": r["kind"], "props": json.loads(r["props"])}
        for r in rows
    ]
    for r in await db.fetchall(
        "SELECT order_id, viewer, amount_minor, products, signed, ts FROM orders WHERE show_id = ?",
        (show_id,),
    ):
        props: dict[str, Any] = {
            "order": r["order_id"],
            "amount": r["amount_minor"],
            "signed": bool(r["signed"]),
        }
        if r["products"]:
            props["products"] = json.loads(r["products"])
        events.append({"ts": r["ts"], "viewer": r["viewer"], "kind": "purchase", "props": props})
    return events
