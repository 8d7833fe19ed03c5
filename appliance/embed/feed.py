"""The public facts embed.js shows on the shop's pages, read from the store. Nothing here
is secret: it is what the viewer site's home page and show pages already show."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from appliance.catalog import shows
from appliance.replays import content
from appliance.replays.store import ReplayStore
from appliance.storage.db import Database

MAX_REF = 100  # a SKU or variant id asked for by a replays strip
MAX_REPLAYS = 12


@dataclass(frozen=True)
class Featured:
    """The show the floating button is for: `live` now, or the `next` one."""

    state: str  # "live" | "next"
    show: shows.Show


async def featured(db: Database, now: int, next_within_hours: float) -> Featured | None:
    """The live show (the one that went live last), else the next scheduled show starting
    within `next_within_hours` and not over yet; None: the button stays hidden."""
    live = await shows.list_shows(db, "live")
    if live:
        return Featured("live", max(live, key=lambda s: s.live_started_at or 0))
    if next_within_hours <= 0:
        return None
    horizon = now + next_within_hours * 3600
    for show in await shows.list_shows(db, "scheduled"):  # soonest first
        if show.ends_at > now and show.starts_at <= horizon:
            return Featured("next", show)
    return None


async def product_replays(db: Database, replays: ReplayStore, ref: str) -> list[dict[str, Any]]:
    """The published replays in which the product with SKU or variant id `ref` was shown,
    newest show first, each with the time of that product's first chapter."""
    rows = await db.fetchall(
        "SELECT DISTINCT pin.show_id, p.id AS product_id FROM show_pins pin "
        "JOIN products p ON p.id = pin.product_id JOIN shows s ON s.id = pin.show_id "
        "WHERE (p.sku = ? OR p.variant_id = ?) AND s.status = 'ended' "
        "ORDER BY s.starts_at DESC",
        (ref, ref),
    )
    out: list[dict[str, Any]] = []
    for row in rows:
        show_id, product_id = int(row["show_id"]), int(row["product_id"])
        replay = await replays.get(show_id)
        show = await shows.get_show(db, show_id)
        if replay is None or show is None or replay.status != "ready" or not replay.published:
            continue
        chapters = await content.chapters(db, show_id, replay.timeline)
        at = next((c.t for c in chapters if c.product.id == product_id), None)
        if at is None:
            continue  # shown only in a part trimmed away
        out.append({"show_id": show_id, "title": show.title, "t": at, "product_id": product_id})
        if len(out) >= MAX_REPLAYS:
            break
    return out
