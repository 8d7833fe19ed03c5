"""KPIs of stored shows: the live window of a show, its figures (cached until new events
or orders arrive), the same figures across shows, and their CSV exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Iterable
from typing import Any

from appliance.catalog import shows
from appliance.catalog.spreadsheet import safe_cell
from appliance.kpis import engine
from appliance.kpis.events import show_events
from appliance.storage.db import Database

# The seeds' reference points, shown beside each show's own figures.
REFERENCES = {
    "engagement_rate": (0.30, 0.30),
    "attention_rate": (0.30, 0.30),
    "conversion_rate": (0.08, 0.10),
}

# The per-show figures of the CSV export and the trend table, in order.
COLUMNS = [
    "viewers",
    "peak_concurrent",
    "avg_watch_seconds",
    "attention_rate",
    "viewers_over_1min",
    "mobile_viewers",
    "chat_messages",
    "chatters",
    "chat_user_rate",
    "likes",
    "engagement_rate",
    "poll_votes",
    "poll_participants",
    "participation_rate",
    "giveaway_entries",
    "product_clicks",
    "add_to_cart",
    "unique_carts",
    "checkouts",
    "checkout_total",
    "orders",
    "revenue",
    "average_cart",
    "conversion_rate",
    "unverified_orders",
    "unverified_revenue",
    "calendar_adds",
    "reminder_signups",
    "reminder_viewers",
    "replay_views",
    "replay_viewers",
    "replay_add_to_cart",
    "replay_checkouts",
    "replay_orders",
    "replay_revenue",
]


def live_window(show: shows.Show, now: float) -> tuple[float, float]:
    """[live_start, live_end] of a show: when it went live and ended (now while live).
    A show that never went live has an empty window at its scheduled start."""
    if show.live_started_at is None:
        return float(show.starts_at), float(show.starts_at)
    end = show.live_ended_at if show.live_ended_at is not None else now
    return float(show.live_started_at), float(max(end, show.live_started_at))


class KpiReports:
    def __init__(self, db: Database, heartbeat_seconds: float) -> None:
        self.db = db
        self.heartbeat = heartbeat_seconds
        self._cache: dict[int, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    async def _version(self, show: shows.Show) -> tuple[Any, ...]:
        # Orders are counted with their signed flag and amounts: a signed report that
        # replaces an unsigned one changes the figures without adding a row.
        row = await self.db.fetchone(
            "SELECT (SELECT MAX(id) FROM events WHERE show_id = ?) AS events, "
            "(SELECT COUNT(*) || '/' || TOTAL(signed) || '/' || TOTAL(amount_minor) "
            "FROM orders WHERE show_id = ?) AS orders, "
            "(SELECT count_unsigned_orders FROM shop_settings WHERE id = 1) AS unsigned",
            (show.id, show.id),
        )
        assert row is not None
        return (
            row["events"],
            row["orders"],
            bool(row["unsigned"]),
            show.status,
            show.live_started_at,
            show.live_ended_at,
        )

    async def for_show(self, show: shows.Show, now: float | None = None) -> dict[str, Any]:
        """The show's figures. Computed off the event loop; reused until the show's events,
        orders or live window change (a live show's window moves: never reused)."""
        now = time.time() if now is None else now
        version = await self._version(show)
        cached = self._cache.get(show.id)
        if cached is not None and cached[0] == version and show.status != "live":
            return cached[1]
        events = await show_events(self.db, show.id)
        start, end = live_window(show, now)
        count_unsigned = bool(version[2])
        figures = await asyncio.to_thread(
            engine.compute, events, start, end, self.heartbeat, count_unsigned
        )
        if len(self._cache) > 500:
            self._cache.clear()
        self._cache[show.id] = (version, figures)
        return figures

    async def across(self, since: float | None, until: float | None) -> list[dict[str, Any]]:
        """Every show scheduled in [since, until) that went live, oldest first, with its
        figures: the trend "viewers should grow live after live"."""
        rows = []
        for show in sorted(await shows.list_shows(self.db), key=lambda s: s.starts_at):
            if show.live_started_at is None:
                continue
            if since is not None and show.starts_at < since:
                continue
            if until is not None and show.starts_at >= until:
                continue
            rows.append({"show": show, "kpis": await self.for_show(show)})
        return rows


def kpis_csv(rows: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["show_id", "title", "starts_at", "live_seconds", *COLUMNS])
    for row in rows:
        show, figures = row["show"], row["kpis"]
        values = [_cell(figures[c]) for c in COLUMNS]
        writer.writerow(
            _safe_row(
                [show.id, show.title, show.starts_at, _cell(figures["live_seconds"]), *values]
            )
        )
    return out.getvalue()


def events_csv(events: Iterable[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["ts", "viewer", "kind", "props"])
    for e in sorted(events, key=lambda e: e["ts"]):
        props = json.dumps(e["props"], sort_keys=True, separators=(",", ":"))
        writer.writerow(_safe_row([f"{e['ts']:.3f}", e["viewer"], e["kind"], props]))
    return out.getvalue()


def _safe_row(cells: list[Any]) -> list[str]:
    """Every cell defused against spreadsheet formulas, whatever its column: a viewer id
    comes from a cookie and may start with "-", a title with "="."""
    return [safe_cell(str(c)) for c in cells]


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
