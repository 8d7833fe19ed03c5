"""Orders the shop reports back, attributed to a show (docs/conversions.md).

Two ways in: a signed report from the shop's server (`POST /api/conversions`, HMAC-SHA256
of the body with the secret shown in Settings), or the thank-you page snippet
(`POST /api/conversions/beacon`, unsigned). Anyone can send a beacon, so an unsigned order
is only accepted when the viewer's own add-to-cart events in that show are worth its
amount (`check_beacon`), is stored as unverified, and is kept out of the figures unless
the retailer counts unsigned orders (docs/conversions.md).

An order id is recorded once; repeats are answered "duplicate", except that a signed
report replaces an unsigned one with the same id: the shop's word wins over a browser's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from appliance.kpis.events import BadEvent, json_object, timestamp
from appliance.storage.db import Database

MAX_BODY = 16 * 1024
MAX_AMOUNT = 10**11  # minor units
MAX_AGE = 30 * 86400.0
SIGNATURE_HEADER = "X-Vitrine-Signature"
CAMPAIGN_RE = re.compile(r"^show-(\d{1,10})$")
VIEWER_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# A beacon order may exceed the cart it rests on by 2 % or by the dearest item's price,
# whichever is more: room for shipping, tax and rounding, not for a made-up total.
TOLERANCE_PERCENT = 2

RECORDED, REPLACED, DUPLICATE = "recorded", "replaced", "duplicate"


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


async def known_order(db: Database, order_id: str) -> bool:
    return await db.fetchval("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)) is not None


def beacon_allowance(cart_total: int, dearest: int) -> int:
    """How far above the cart's worth a beacon order's amount may go."""
    return max(-(-cart_total * TOLERANCE_PERCENT // 100), dearest)


async def check_beacon(db: Database, conv: Conversion, show_id: int | None) -> None:
    """Refuse (BadEvent) an unsigned order its viewer's cart does not account for.

    The cart is what the viewer added in that show, at the catalogue's prices (the
    event log stores those, never the page's). Each add to cart backs at most one
    order, and the viewer's unsigned orders in the show together may not exceed the
    cart's worth plus `beacon_allowance`."""
    if not conv.viewer or show_id is None:
        raise BadEvent(
            "unsigned reports are only accepted for a viewer who added to the cart "
            "from a show (vitrine_v)"
        )
    rows = await db.fetchall(
        "SELECT props FROM events WHERE viewer = ? AND show_id = ? AND kind = 'add_to_cart'",
        (conv.viewer, show_id),
    )
    if not rows:
        raise BadEvent(
            "unsigned reports are only accepted for a viewer who added to the cart "
            "from a show (vitrine_v)"
        )
    lines = [_cart_line(r["props"]) for r in rows]
    total = sum(price * quantity for price, quantity in lines)
    dearest = max(price for price, _quantity in lines)
    earlier = await db.fetchone(
        "SELECT COUNT(*) AS n, TOTAL(amount_minor) AS amount FROM orders "
        "WHERE viewer = ? AND show_id = ? AND signed = 0",
        (conv.viewer, show_id),
    )
    assert earlier is not None
    if earlier["n"] >= len(rows):
        raise BadEvent("this viewer's add-to-cart events already back as many orders")
    ceiling = total + beacon_allowance(total, dearest)
    if int(earlier["amount"]) + conv.amount > ceiling:
        raise BadEvent(
            f"amount is more than this viewer added to the cart in show {show_id} "
            f"(at most {ceiling - int(earlier['amount'])} minor units): "
            "report it signed from the shop's server instead"
        )


def _cart_line(props: str) -> tuple[int, int]:
    """(unit price, quantity) of a stored add_to_cart event."""
    data = json.loads(props)
    price, quantity = data.get("price", 0), data.get("quantity", 1)
    return (
        price if isinstance(price, int) and price > 0 else 0,
        quantity if isinstance(quantity, int) and quantity > 0 else 1,
    )


async def record(db: Database, conv: Conversion, show_id: int | None, signed: bool) -> str:
    """Store the order: RECORDED when new, REPLACED when a signed report took the place
    of an unsigned one with the same id, DUPLICATE when it changed nothing."""
    values = (
        show_id,
        conv.viewer,
        conv.amount,
        conv.currency,
        None if conv.products is None else json.dumps(conv.products),
        int(signed),
        conv.ts,
    )
    async with db.transaction() as conn:
        cur = await conn.execute("SELECT signed FROM orders WHERE order_id = ?", (conv.order_id,))
        existing = await cur.fetchone()
        if existing is None:
            await conn.execute(
                "INSERT INTO orders (show_id, viewer, amount_minor, currency, products, signed, "
                "ts, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*values, conv.order_id),
            )
            return RECORDED
        if signed and not existing[0]:
            # The shop's figures win; a show or viewer it leaves out stays as the beacon
            # had it (that one was checked against the viewer's cart).
            await conn.execute(
                "UPDATE orders SET show_id = COALESCE(?, show_id), "
                "viewer = COALESCE(NULLIF(?, ''), viewer), amount_minor = ?, currency = ?, "
                "products = ?, signed = ?, ts = ? WHERE order_id = ?",
                (*values, conv.order_id),
            )
            return REPLACED
        return DUPLICATE
