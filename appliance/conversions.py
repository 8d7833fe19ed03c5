"""Orders the shop reports back, attributed to a show (docs/conversions.md).

Two ways in: a signed report from the shop's server (`POST /api/conversions`, HMAC-SHA256
of the body with the secret shown in Settings), or the thank-you page snippet
(`POST /api/conversions/beacon`, unsigned, so only accepted for a viewer who added to the
cart from a show). An order id is recorded once; repeats are answered "duplicate".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from appliance.db import Database
from appliance.events import BadEvent, json_object, timestamp

MAX_BODY = 16 * 1024
MAX_AMOUNT = 10**11  # minor units
MAX_AGE = 30 * 86400.0
SIGNATURE_HEADER = "X-Vitrine-Signature"
CAMPAIGN_RE = re.compile(r"^show-(\d{1,10})$")
VIEWER_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


@dataclass(frozen=True)
class Conversion:
    order_id: str
    amount: int
    currency: str
    viewer: str
    show_id: int | None
    products: list[int] | None
    ts: float


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: what the shop's server computes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, given: str | None) -> bool:
    if not secret or not given:
        return False
    return hmac.compare_digest(sign(secret, body), given.strip())


async def get_secret(db: Database) -> str:
    return str(await db.fetchval("SELECT conversion_secret FROM shop_settings WHERE id = 1") or "")


async def rotate_secret(db: Database) -> str:
    secret = secrets.token_hex(32)
    await db.execute("UPDATE shop_settings SET conversion_secret = ? WHERE id = 1", (secret,))
    return secret


def parse(body: bytes, shop_currency: str, now: float) -> Conversion:
    """A report as the shop sent it; BadEvent says what is wrong with it."""
    data = json_object(body, MAX_BODY)
    order = data.get("order_id")
    if isinstance(order, int) and not isinstance(order, bool):
        order = str(order)
    if not isinstance(order, str) or not 1 <= len(order.strip()) <= 128:
        raise BadEvent("order_id must be a string of 1 to 128 characters")
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_AMOUNT:
        raise BadEvent("amount must be a whole number of minor units (cents), 0 or more")
    currency = data.get("currency")
    if not isinstance(currency, str) or currency.upper() != shop_currency.upper():
        raise BadEvent(f"currency must be {shop_currency}, the shop's currency")
    viewer = data.get("vitrine_v") or ""
    if not isinstance(viewer, str) or (viewer and not VIEWER_RE.match(viewer)):
        raise BadEvent("vitrine_v is not a viewer id from a Vitrine link")
    show = data.get("show")
    campaign = data.get("utm_campaign")
    if show is None and isinstance(campaign, str) and (m := CAMPAIGN_RE.match(campaign)):
        show = int(m.group(1))
    if show is not None and (isinstance(show, bool) or not isinstance(show, int) or show < 1):
        raise BadEvent("show must be a show id")
    products = data.get("products")
    if products is not None:
        ok = isinstance(products, list) and len(products) <= 100
        if not ok or not all(isinstance(p, int) and not isinstance(p, bool) for p in products):
            raise BadEvent("products must be a list of at most 100 product ids")
    ts = timestamp(data.get("ts", now), now, 300.0, MAX_AGE, "30 days")
    return Conversion(order.strip(), amount, currency.upper(), viewer, show, products, ts)


async def attribute(db: Database, conv: Conversion) -> int | None:
    """The show an order belongs to: the one it names, else the last show its viewer
    added to the cart from, else the last show its viewer watched, else none."""
    if conv.show_id is not None:
        if await db.fetchval("SELECT 1 FROM shows WHERE id = ?", (conv.show_id,)) is None:
            raise BadEvent(f"there is no show {conv.show_id}")
        return conv.show_id
    if not conv.viewer:
        return None
    show = await db.fetchval(
        "SELECT show_id FROM events WHERE viewer = ? ORDER BY kind = 'add_to_cart' DESC, ts DESC "
        "LIMIT 1",
        (conv.viewer,),
    )
    return None if show is None else int(show)


async def viewer_added_to_cart(db: Database, viewer: str, show_id: int | None) -> bool:
    if not viewer:
        return False
    sql = "SELECT 1 FROM events WHERE viewer = ? AND kind = 'add_to_cart'"
    params: tuple[Any, ...] = (viewer,)
    if show_id is not None:
        sql += " AND show_id = ?"
        params += (show_id,)
    return await db.fetchval(sql + " LIMIT 1", params) is not None


async def record(db: Database, conv: Conversion, show_id: int | None, signed: bool) -> bool:
    """Store the order; False when this order id was already recorded."""
    async with db.transaction() as conn:
        cur = await conn.execute(
            "INSERT OR IGNORE INTO orders (order_id, show_id, viewer, amount_minor, currency, "
            "products, signed, ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                conv.order_id,
                show_id,
                conv.viewer,
                conv.amount,
                conv.currency,
                None if conv.products is None else json.dumps(conv.products),
                int(signed),
                conv.ts,
            ),
        )
        return cur.rowcount > 0
