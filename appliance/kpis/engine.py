"""The KPI engine: one pure function from a show's event log to its figures.

No I/O here. docs/kpis.md defines every figure with the same words as the code below;
change both together.

An event is a mapping with `ts` (seconds, float), `viewer` (str), `kind` (str) and
`props` (mapping). Kinds: join (props: device, channel), heartbeat, leave, chat, like
(props: count), product_click (props: product), add_to_cart (props: product, quantity,
price), checkout (props: items, total, products), purchase (props: order, amount, products,
signed), calendar_add, reminder_signup (a confirmed email reminder), replay_view,
vote (props: poll), giveaway_entry (props: giveaway).

A purchase whose `signed` is false came from the unsigned thank-you page beacon: it is
counted apart as unverified, and in orders, revenue and conversion only when the
retailer chose to count unsigned orders (`count_unsigned`).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

Event = Mapping[str, Any]
Interval = tuple[float, float]

BUCKET_SECONDS = 60.0


def _ratio(num: float, den: float) -> float:
    """A fraction in [0, 1]; 0 when there is nothing to divide by."""
    if den <= 0:
        return 0.0
    return min(1.0, max(0.0, num / den))


def _div(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def _union(intervals: list[Interval]) -> list[Interval]:
    """Disjoint, sorted intervals covering the same instants as `intervals`."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def presence(events: list[Event], live_start: float, live_end: float, h: float) -> list[Interval]:
    """One viewer's presence in the live window: each join or heartbeat at t makes the
    viewer present on [t, t + h), cut short by the first leave at or after t."""
    leaves = sorted(float(e["ts"]) for e in events if e["kind"] == "leave")
    raw: list[Interval] = []
    for e in events:
        if e["kind"] not in ("join", "heartbeat"):
            continue
        t = float(e["ts"])
        end = t + h
        i = bisect_left(leaves, t)
        if i < len(leaves):
            end = min(end, leaves[i])
        raw.append((max(t, live_start), min(end, live_end)))
    return _union(raw)


def _order(e: Event) -> tuple[float, str, str, str]:
    """Time order; events at the same instant in one fixed order, whatever the input's."""
    props = json.dumps(e.get("props") or {}, sort_keys=True, default=str)
    return (float(e["ts"]), str(e["kind"]), str(e["viewer"]), props)


def _count(props: Mapping[str, Any], key: str) -> int:
    """A positive whole count from props, 1 when absent or not a positive number."""
    value = props.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 1:
        return 1
    return int(value)


def _amount(props: Mapping[str, Any]) -> int:
    value = props.get("amount")
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return 0
    return int(value)


def _product(props: Mapping[str, Any]) -> str | None:
    value = props.get("product")
    return None if value is None else str(value)


def _peak_and_timeline(
    spans: dict[str, list[Interval]], live_start: float, live_end: float
) -> tuple[int, list[int]]:
    """The largest number of viewers present at one instant, and the largest in each
    BUCKET_SECONDS bucket of the live window."""
    window = live_end - live_start
    buckets = math.ceil(window / BUCKET_SECONDS) if window > 0 else 0
    per_bucket = [0] * buckets
    edges: list[tuple[float, int]] = []
    for intervals in spans.values():
        for start, end in intervals:
            edges.append((start, 1))
            edges.append((end, -1))
    # Intervals are half-open: at one instant, departures come before arrivals.
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    current = peak = 0
    for t, step in edges:
        current += step
        if step > 0:
            peak = max(peak, current)
            index = min(buckets - 1, int((t - live_start) // BUCKET_SECONDS))
            per_bucket[index] = max(per_bucket[index], current)
    # A bucket nobody entered holds whoever stayed through it.
    current = 0
    i = 0
    for b in range(buckets):
        bucket_start = live_start + b * BUCKET_SECONDS
        while i < len(edges) and edges[i][0] <= bucket_start:
            current += edges[i][1]
            i += 1
        per_bucket[b] = max(per_bucket[b], current)
    return peak, per_bucket


def compute(
    events: Iterable[Event],
    live_start: float,
    live_end: float,
    heartbeat_interval: float = 15.0,
    count_unsigned: bool = False,
) -> dict[str, Any]:
    """Every KPI of one show (docs/kpis.md) from its events and its live window."""
    live_end = max(live_end, live_start)
    window = live_end - live_start
    by_viewer: dict[str, list[Event]] = defaultdict(list)
    ordered = sorted(events, key=_order)
    for e in ordered:
        by_viewer[str(e["viewer"])].append(e)

    # -- audience ---------------------------------------------------------------------
    spans: dict[str, list[Interval]] = {}
    watch: dict[str, float] = {}
    first_join: dict[str, Mapping[str, Any]] = {}
    for viewer, mine in by_viewer.items():
        intervals = presence(mine, live_start, live_end, heartbeat_interval)
        seconds = sum(end - start for start, end in intervals)
        if seconds > 0:
            spans[viewer] = intervals
            watch[viewer] = seconds
        for e in mine:
            if e["kind"] == "join":
                first_join[viewer] = e.get("props") or {}
                break
    viewers = set(watch)
    n = len(viewers)
    total_watch = sum(watch.values())
    peak, concurrent = _peak_and_timeline(spans, live_start, live_end)
    channels: dict[str, int] = defaultdict(int)
    devices: dict[str, int] = defaultdict(int)
    for viewer in viewers:
        joined = first_join.get(viewer, {})
        channels[str(joined.get("channel") or "unknown")] += 1
        devices[str(joined.get("device") or "unknown")] += 1

    # -- what viewers did ----------------------------------------------------------------
    def live(e: Event) -> bool:
        return live_start <= float(e["ts"]) <= live_end

    chat_messages = likes = product_clicks = add_to_cart = calendar_adds = 0
    reminder_signups = 0
    poll_votes = giveaway_entries = 0
    poll_participants: set[str] = set()
    replay_views = replay_add_to_cart = 0
    checkouts = checkout_total = replay_checkouts = replay_checkout_total = 0
    replay_product_clicks = 0
    chatters: set[str] = set()
    engaged: set[str] = set()
    carts: set[str] = set()
    buyers: set[str] = set()
    replay_viewers: set[str] = set()
    orders: dict[str, int] = {}
    replay_orders: dict[str, int] = {}
    seen_orders: set[str] = set()
    unverified: dict[str, int] = {}
    chat_per_bucket = [0] * len(concurrent)
    likes_per_bucket = [0] * len(concurrent)
    products: dict[str, dict[str, int]] = defaultdict(
        lambda: {
            "clicks": 0,
            "add_to_cart": 0,
            "orders": 0,
            "replay_add_to_cart": 0,
            "replay_orders": 0,
        }
    )
    carted: dict[str, set[str]] = defaultdict(set)  # viewer -> products added so far

    def bucket(e: Event) -> int:
        return min(len(concurrent) - 1, int((float(e["ts"]) - live_start) // BUCKET_SECONDS))

    for e in ordered:
        kind, viewer, ts = e["kind"], str(e["viewer"]), float(e["ts"])
        props: Mapping[str, Any] = e.get("props") or {}
        in_live, after = live(e), ts > live_end
        if kind == "chat" and in_live:
            chat_messages += 1
            chatters.add(viewer)
            engaged.add(viewer)
            if concurrent:
                chat_per_bucket[bucket(e)] += 1
        elif kind == "like" and in_live:
            count = _count(props, "count")
            likes += count
            engaged.add(viewer)
            if concurrent:
                likes_per_bucket[bucket(e)] += count
        elif kind == "vote" and in_live:
            poll_votes += 1
            poll_participants.add(viewer)
        elif kind == "giveaway_entry" and in_live:
            giveaway_entries += 1
        elif kind == "product_click" and in_live:
            product_clicks += 1
            if (p := _product(props)) is not None:
                products[p]["clicks"] += 1
        elif kind == "add_to_cart":
            p = _product(props)
            if p is not None:
                carted[viewer].add(p)
            if in_live:
                add_to_cart += 1
                carts.add(viewer)
                if p is not None:
                    products[p]["add_to_cart"] += 1
            elif after:
                replay_add_to_cart += 1
                if p is not None:
                    products[p]["replay_add_to_cart"] += 1
        elif kind == "purchase" and (in_live or after):
            order = str(props.get("order") or "")
            if not order or order in seen_orders:
                continue
            seen_orders.add(order)
            if props.get("signed") is False:
                unverified[order] = _amount(props)
                if not count_unsigned:
                    continue
            listed = props.get("products")
            bought = {str(p) for p in listed} if isinstance(listed, list) else set(carted[viewer])
            key = "orders" if in_live else "replay_orders"
            (orders if in_live else replay_orders)[order] = _amount(props)
            for p in bought:
                products[p][key] += 1
            if in_live:
                buyers.add(viewer)
        elif kind == "product_click" and after:
            replay_product_clicks += 1
        elif kind == "checkout" and (in_live or after):
            total = props.get("total")
            value = total if isinstance(total, int) and not isinstance(total, bool) else 0
            if in_live:
                checkouts += 1
                checkout_total += max(0, value)
            else:
                replay_checkouts += 1
                replay_checkout_total += max(0, value)
        elif kind == "calendar_add" and ts < live_end:
            calendar_adds += 1
        elif kind == "reminder_signup" and ts < live_end:
            reminder_signups += 1
        elif kind == "replay_view" and after:
            replay_views += 1
            replay_viewers.add(viewer)

    revenue = sum(orders.values())
    return {
        "live_start": live_start,
        "live_end": live_end,
        "live_seconds": window,
        "viewers": n,
        "peak_concurrent": peak,
        "avg_watch_seconds": _div(total_watch, n),
        "attention_rate": _ratio(_div(total_watch, n), window),
        "viewers_over_1min": sum(1 for s in watch.values() if s >= 60.0),
        "mobile_viewers": devices.get("mobile", 0),
        "channels": dict(sorted(channels.items(), key=lambda kv: (-kv[1], kv[0]))),
        "devices": dict(sorted(devices.items(), key=lambda kv: (-kv[1], kv[0]))),
        "chat_messages": chat_messages,
        "chatters": len(chatters),
        "chat_user_rate": _ratio(len(chatters & viewers), n),
        "likes": likes,
        "engagement_rate": _ratio(len(engaged & viewers), n),
        "poll_votes": poll_votes,
        "poll_participants": len(poll_participants),
        "participation_rate": _ratio(len(poll_participants & viewers), n),
        "giveaway_entries": giveaway_entries,
        "product_clicks": product_clicks,
        "add_to_cart": add_to_cart,
        "unique_carts": len(carts),
        "orders": len(orders),
        "revenue": revenue,
        "average_cart": _div(revenue, len(orders)),
        "conversion_rate": _ratio(len(buyers & viewers), n),
        "unverified_orders": len(unverified),
        "unverified_revenue": sum(unverified.values()),
        "calendar_adds": calendar_adds,
        "reminder_signups": reminder_signups,
        "reminder_viewers": channels.get("reminder", 0),
        "replay_views": replay_views,
        "replay_viewers": len(replay_viewers),
        "replay_add_to_cart": replay_add_to_cart,
        "replay_orders": len(replay_orders),
        "replay_revenue": sum(replay_orders.values()),
        "checkouts": checkouts,
        "checkout_total": checkout_total,
        "replay_product_clicks": replay_product_clicks,
        "replay_checkouts": replay_checkouts,
        "replay_checkout_total": replay_checkout_total,
        # The sales funnel, live and replay: each step's count of events (orders: distinct).
        "funnel": {
            "live": {
                "viewers": n,
                "product_clicks": product_clicks,
                "add_to_cart": add_to_cart,
                "checkouts": checkouts,
                "orders": len(orders),
            },
            "replay": {
                "viewers": len(replay_viewers),
                "product_clicks": replay_product_clicks,
                "add_to_cart": replay_add_to_cart,
                "checkouts": replay_checkouts,
                "orders": len(replay_orders),
            },
        },
        "products": {p: dict(v) for p, v in sorted(products.items())},
        "timeline": {
            "bucket_seconds": BUCKET_SECONDS,
            "concurrent": concurrent,
            "chat": chat_per_bucket,
            "likes": likes_per_bucket,
        },
    }
