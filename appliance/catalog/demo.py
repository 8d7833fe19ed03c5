"""The demo shop a newcomer sees on first run: a few products, an upcoming and an ended show."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from appliance.catalog.pngdraw import product_picture
from appliance.catalog.products import ProductData, create_product
from appliance.catalog.shop import get_meta, set_meta
from appliance.catalog.shows import ShowData, create_show, end_show, go_live
from appliance.storage.db import Database
from appliance.storage.uploads import UploadStore

DEMO_PRODUCTS = (
    ("Linen shirt", "Washed linen, relaxed fit.", "LIN-001", 5900, "in_stock", (191, 140, 96)),
    ("Silk scarf", "Hand-rolled edges, 90 x 90 cm.", "SCF-014", 7500, "low_stock", (176, 58, 86)),
    (
        "Leather tote",
        "Vegetable-tanned, made in France.",
        "TOT-203",
        18900,
        "in_stock",
        (120, 72, 40),
    ),
    ("Wool beanie", "Merino, one size.", "BNE-007", 2900, "preorder", (62, 96, 140)),
)


async def seed_demo(
    db: Database, uploads: UploadStore, currency: str = "EUR", timezone: str = "Europe/Paris"
) -> bool:
    """Create the demo shop once; returns False when it was created before."""
    if await get_meta(db, "demo_seeded") is not None:
        return False
    ids = []
    for name, description, sku, price, stock, color in DEMO_PRODUCTS:
        image = await uploads.save(product_picture(color, size=240))
        data = ProductData(
            name=name,
            description=description,
            sku=sku,
            price_minor=price,
            currency=currency,
            stock_status=stock,
            product_url=f"https://shop.example.com/products/{sku.lower()}",
            cart_url="",
        )
        ids.append(await create_product(db, data, image))
    now = int(time.time())
    # Next week at 18:00 in the shop's time zone: a plausible slot for a live show.
    zone = ZoneInfo(timezone)
    evening = datetime.now(zone).replace(hour=18, minute=0, second=0, microsecond=0)
    next_week = int((evening + timedelta(days=7)).timestamp())
    covers = [
        await uploads.save(product_picture(color, size=480, height=270))
        for color in ((150, 90, 60), (70, 110, 150))
    ]
    await create_show(
        db,
        ShowData(
            title="Autumn essentials, live",
            description="Our favourite pieces for the new season, tried on live. Ask anything!",
            starts_at=next_week,
            duration_minutes=45,
            host_id=None,
        ),
        cover=covers[0],
        product_ids=ids[:3],
    )
    past = await create_show(
        db,
        ShowData(
            title="Summer sale live",
            description="Last pieces of the summer collection at special prices.",
            starts_at=next_week - 21 * 86400,
            duration_minutes=40,
            host_id=None,
        ),
        cover=covers[1],
        product_ids=[ids[1], ids[3]],
    )
    await go_live(db, past)
    await end_show(db, past)
    started = next_week - 21 * 86400
    await db.execute(
        "UPDATE shows SET live_started_at = ?, live_ended_at = ? WHERE id = ?",
        (started, started + 40 * 60, past),
    )
    await set_meta(db, "demo_seeded", str(now))
    return True
