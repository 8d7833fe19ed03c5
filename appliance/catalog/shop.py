"""The shop's own settings: name, logo, brand colour, currency, language, time zone, and
whether orders reported without a signature count in the figures."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.storage.db import Database


@dataclass(frozen=True)
class Shop:
    name: str
    logo: str | None
    brand_color: str
    currency: str
    language: str
    timezone: str
    cart_url_template: str
    # Unsigned (thank-you page beacon) orders count in orders, revenue and conversion
    # only when the retailer says so: anyone can send a beacon (docs/conversions.md).
    count_unsigned_orders: bool = False
    # How "Checkout" hands the in-show cart to the shop (appliance/cart/checkout.py).
    cart_platform: str = "custom"


async def get_shop(db: Database) -> Shop:
    row = await db.fetchone("SELECT * FROM shop_settings WHERE id = 1")
    if row is None:
        raise RuntimeError("shop_settings row is missing: the database is damaged")
    return Shop(
        row["name"],
        row["logo"],
        row["brand_color"],
        row["currency"],
        row["language"],
        row["timezone"],
        row["cart_url_template"],
        bool(row["count_unsigned_orders"]),
        row["cart_platform"],
    )


async def save_shop(db: Database, shop: Shop) -> None:
    await db.execute(
        "UPDATE shop_settings SET name = ?, logo = ?, brand_color = ?, currency = ?, "
        "language = ?, timezone = ?, cart_url_template = ?, count_unsigned_orders = ?, "
        "cart_platform = ? WHERE id = 1",
        (
            shop.name,
            shop.logo,
            shop.brand_color,
            shop.currency,
            shop.language,
            shop.timezone,
            shop.cart_url_template,
            int(shop.count_unsigned_orders),
            shop.cart_platform,
        ),
    )


async def get_meta(db: Database, key: str) -> str | None:
    value = await db.fetchval("SELECT value FROM meta WHERE key = ?", (key,))
    return None if value is None else str(value)


async def set_meta(db: Database, key: str, value: str) -> None:
    await db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, value),
    )
