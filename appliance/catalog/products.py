"""The catalogue: products with a price in minor units and links to the retailer's shop."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from appliance.storage.db import Database, Row

STOCK_STATUSES = ("in_stock", "low_stock", "out_of_stock", "preorder")


@dataclass(frozen=True)
class ProductData:
    """What a person edits; validated before it reaches the store."""

    name: str
    description: str
    sku: str | None
    price_minor: int
    currency: str
    stock_status: str
    product_url: str
    cart_url: str
    # The shop's own id for its cart API (Shopify variant, WooCommerce product id);
    # keyword-only so that every older positional construction stays valid.
    variant_id: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class Product(ProductData):
    id: int
    image: str | None

    @classmethod
    def from_row(cls, row: Row) -> Product:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    def cart_link(self, template: str) -> str:
        """Where "Add to cart" goes: the product's own cart URL, else the shop's template."""
        if self.cart_url:
            return self.cart_url
        if template and self.sku:
            return template.replace("{sku}", self.sku).replace("{qty}", "1")
        return self.product_url


_DATA_COLUMNS = [f.name for f in fields(ProductData)]


async def list_products(db: Database) -> list[Product]:
    rows = await db.fetchall("SELECT * FROM products ORDER BY name COLLATE NOCASE, id")
    return [Product.from_row(r) for r in rows]


async def get_product(db: Database, product_id: int) -> Product | None:
    row = await db.fetchone("SELECT * FROM products WHERE id = ?", (product_id,))
    return None if row is None else Product.from_row(row)


async def sku_taken(db: Database, sku: str, except_id: int | None = None) -> bool:
    found = await db.fetchval("SELECT id FROM products WHERE sku = ?", (sku,))
    return found is not None and found != except_id


async def create_product(db: Database, data: ProductData, image: str | None) -> int:
    now = int(time.time())
    cols = ", ".join(_DATA_COLUMNS)
    marks = ", ".join("?" for _ in _DATA_COLUMNS)
    return await db.execute(
        f"INSERT INTO products ({cols}, image, created_at, updated_at) VALUES ({marks}, ?, ?, ?)",
        [*(getattr(data, c) for c in _DATA_COLUMNS), image, now, now],
    )


async def update_product(
    db: Database, product_id: int, data: ProductData, image: str | None
) -> None:
    sets = ", ".join(f"{c} = ?" for c in _DATA_COLUMNS)
    await db.execute(
        f"UPDATE products SET {sets}, image = ?, updated_at = ? WHERE id = ?",
        [*(getattr(data, c) for c in _DATA_COLUMNS), image, int(time.time()), product_id],
    )


async def delete_product(db: Database, product_id: int) -> None:
    await db.execute("DELETE FROM products WHERE id = ?", (product_id,))


async def upsert_many(db: Database, items: Sequence[ProductData]) -> tuple[int, int]:
    """Insert or update (by SKU) every item in one transaction; (created, updated)."""
    created = updated = 0
    now = int(time.time())
    cols = ", ".join(_DATA_COLUMNS)
    marks = ", ".join("?" for _ in _DATA_COLUMNS)
    sets = ", ".join(f"{c} = ?" for c in _DATA_COLUMNS)
    async with db.transaction() as conn:
        for item in items:
            values = [getattr(item, c) for c in _DATA_COLUMNS]
            existing = None
            if item.sku:
                async with conn.execute("SELECT id FROM products WHERE sku = ?", (item.sku,)) as c:
                    existing = await c.fetchone()
            if existing:
                await conn.execute(
                    f"UPDATE products SET {sets}, updated_at = ? WHERE id = ?",
                    [*values, now, existing[0]],
                )
                updated += 1
            else:
                await conn.execute(
                    f"INSERT INTO products ({cols}, created_at, updated_at) VALUES ({marks}, ?, ?)",
                    [*values, now, now],
                )
                created += 1
    return created, updated


def show_link(url: str, show_id: int) -> str:
    """The shop link with the show in it, so sales can be attributed to the show."""
    if not url:
        return url
    parts = urlsplit(url)
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k not in ("utm_source", "utm_campaign")
    ]
    query += [("utm_source", "vitrine"), ("utm_campaign", f"show-{show_id}")]
    return urlunsplit(parts._replace(query=urlencode(query)))
