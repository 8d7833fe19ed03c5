"""The retailer's KPIs: one show's figures and charts, the trend across shows, CSV and
JSON exports (definitions in docs/kpis.md)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal, format_percent
from quart import Blueprint, Response, g, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.catalog import shows
from appliance.i18n import locales
from appliance.i18n.translate import N_, _
from appliance.kpis import charts
from appliance.kpis.events import show_events
from appliance.kpis.reports import COLUMNS, REFERENCES, KpiReports, events_csv, kpis_csv
from appliance.services import Services
from appliance.views.web import current_user, render, staff_required

READERS = ("admin", "host")
readers_only = staff_required(*READERS)

# key: (label, definition, kind). The definitions are docs/kpis.md's, shortened.
FIGURES: dict[str, tuple[str, str, str]] = {
    "viewers": (N_("Viewers"), N_("People who watched the live for any length of time."), "count"),
    "peak_concurrent": (
        N_("Peak audience"),
        N_("The most viewers watching at the same moment."),
        "count",
    ),
    "avg_watch_seconds": (
        N_("Average watch time"),
        N_("Total time watched divided by the number of viewers."),
        "seconds",
    ),
    "attention_rate": (
        N_("Attention"),
        N_("Average watch time as a share of the show's length."),
        "rate",
    ),
    "viewers_over_1min": (
        N_("Watched over a minute"),
        N_("Viewers who watched for one minute or more."),
        "count",
    ),
    "mobile_viewers": (
        N_("Mobile viewers"),
        N_("Viewers who first came on a phone."),
        "count",
    ),
    "chat_messages": (N_("Chat messages"), N_("Messages sent during the live."), "count"),
    "chatters": (N_("Chatters"), N_("Viewers who wrote at least one message."), "count"),
    "chat_user_rate": (
        N_("Chat user rate"),
        N_("Share of viewers who wrote at least one message."),
        "rate",
    ),
    "likes": (N_("Hearts"), N_("Hearts sent during the live."), "count"),
    "engagement_rate": (
        N_("Engagement"),
        N_("Share of viewers who chatted or sent a heart."),
        "rate",
    ),
    "poll_participants": (
        N_("Poll participants"),
        N_("Viewers who voted in a poll or quiz during the live."),
        "count",
    ),
    "participation_rate": (
        N_("Poll participation"),
        N_("Share of viewers who voted in a poll or quiz."),
        "rate",
    ),
    "giveaway_entries": (
        N_("Giveaway entries"),
        N_("Entries in the show's giveaways during the live."),
        "count",
    ),
    "product_clicks": (
        N_("Product clicks"),
        N_("Taps on a product's details during the live."),
        "count",
    ),
    "add_to_cart": (N_("Add to cart"), N_("Taps on Add to cart during the live."), "count"),
    "unique_carts": (
        N_("Unique carts"),
        N_("Viewers who added at least one product to the cart."),
        "count",
    ),
    "checkouts": (
        N_("Checkouts"),
        N_("Carts handed to the shop from the show's Checkout button during the live."),
        "count",
    ),
    "checkout_total": (
        N_("Checkout value"),
        N_("Total of those carts at the catalogue's prices (before the shop's own checkout)."),
        "money",
    ),
    "orders": (
        N_("Orders"),
        N_(
            "Orders the shop reported during the live; unsigned ones only when the settings "
            "count them."
        ),
        "count",
    ),
    "revenue": (N_("Sales"), N_("Total of those orders, each order counted once."), "money"),
    "average_cart": (N_("Average cart"), N_("Sales divided by orders."), "money"),
    "conversion_rate": (
        N_("Conversion"),
        N_("Share of viewers who placed an order."),
        "rate",
    ),
    "unverified_orders": (
        N_("Unverified orders"),
        N_(
            "Orders reported without a signature, by the thank-you page snippet: anyone can "
            "send one."
        ),
        "count",
    ),
    "unverified_revenue": (
        N_("Unverified sales"),
        N_("Total of the unverified orders."),
        "money",
    ),
    "calendar_adds": (
        N_("Calendar adds"),
        N_("Times the show was added to a calendar before it ended."),
        "count",
    ),
    "reminder_signups": (
        N_("Reminder sign-ups"),
        N_("Email reminders asked for and confirmed before the show ended."),
        "count",
    ),
    "reminder_viewers": (
        N_("Viewers from reminders"),
        N_("Viewers who came through the link of a reminder email."),
        "count",
    ),
    "replay_views": (N_("Replay views"), N_("Replay plays after the live."), "count"),
    "replay_viewers": (N_("Replay viewers"), N_("People who played the replay."), "count"),
    "replay_add_to_cart": (
        N_("Replay add to cart"),
        N_("Taps on Add to cart after the live."),
        "count",
    ),
    "replay_product_clicks": (
        N_("Replay product clicks"),
        N_("Taps on a product's details after the live."),
        "count",
    ),
    "replay_checkouts": (
        N_("Replay checkouts"),
        N_("Carts handed to the shop from the replay."),
        "count",
    ),
    "replay_checkout_total": (
        N_("Replay checkout value"),
        N_("Total of the carts handed to the shop from the replay."),
        "money",
    ),
    "replay_orders": (N_("Replay orders"), N_("Orders reported after the live."), "count"),
    "replay_revenue": (N_("Replay sales"), N_("Total of the orders after the live."), "money"),
}
HEADLINE = ["viewers", "peak_concurrent", "avg_watch_seconds", "attention_rate"]
ENGAGEMENT = ["engagement_rate", "chat_messages", "chatters", "chat_user_rate", "likes"]
ENGAGEMENT += ["poll_participants", "participation_rate", "giveaway_entries"]
SALES = ["product_clicks", "add_to_cart", "unique_carts", "checkouts", "checkout_total"]
SALES += ["orders", "revenue", "average_cart"]
SALES += ["conversion_rate", "unverified_orders", "unverified_revenue"]
AUDIENCE = ["viewers_over_1min", "mobile_viewers", "calendar_adds", "reminder_signups"]
AUDIENCE += ["reminder_viewers"]
REPLAY = ["replay_views", "replay_viewers", "replay_add_to_cart", "replay_orders"]
REPLAY += ["replay_revenue", "replay_product_clicks", "replay_checkouts", "replay_checkout_total"]
TREND = ["viewers", "peak_concurrent", "attention_rate", "engagement_rate", "conversion_rate"]
TREND += ["orders", "revenue", "unverified_orders", "unverified_revenue", "replay_views"]


class Formatter:
    """Figures as the retailer reads them, in the page's language and the shop's money."""

    def __init__(self, lang: str, currency: str) -> None:
        self.lang, self.currency = lang, currency

    def count(self, value: float) -> str:
        return format_decimal(round(value), locale=self.lang)

    def rate(self, value: float) -> str:
        return format_percent(value, "#,##0.#%", locale=self.lang)

    def seconds(self, value: float) -> str:
        minutes, seconds = divmod(round(value), 60)
        return _("%(m)s min %(s)s s", m=minutes, s=f"{seconds:02d}")

    def money(self, value: float) -> str:
        return locales.format_money(round(value), self.currency, self.lang)

    def figure(self, key: str, value: float) -> str:
        return str(getattr(self, FIGURES[key][2])(value))


def figure_rows(keys: list[str], figures: dict[str, Any], fmt: Formatter) -> list[dict[str, Any]]:
    rows = []
    for key in keys:
        label, definition, _kind = FIGURES[key]
        row: dict[str, Any] = {
            "key": key,
            "label": _(label),
            "definition": _(definition),
            "value": fmt.figure(key, figures[key]),
        }
        if key in REFERENCES:
            low, high = REFERENCES[key]
            row["reference"] = (
                _("Reference: about %(v)s", v=fmt.rate(low))
                if low == high
                else _("Reference: %(a)s to %(b)s", a=fmt.rate(low), b=fmt.rate(high))
            )
            row["verdict"] = "good" if figures[key] >= low else "low"
        rows.append(row)
    return rows


def parse_day(value: str, tz: str, field: str) -> float | None:
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(_("%(field)s must be a date like 2026-01-31.", field=field)) from None
    return dt.datetime.combine(day, dt.time(), ZoneInfo(tz)).timestamp()


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("admin_kpis", __name__)
    reports = KpiReports(svc.db, float(svc.config.kpis.heartbeat_seconds))

    def formatter() -> Formatter:
        return Formatter(g.lang, g.shop.currency)

    def date_range() -> tuple[float | None, float | None, str, str]:
        start, end = request.args.get("from", ""), request.args.get("to", "")
        since = parse_day(start, g.shop.timezone, _("From"))
        until = parse_day(end, g.shop.timezone, _("To"))
        if until is not None:
            until += 86400  # the whole last day
        return since, until, start, end

    def charts_for(figures: dict[str, Any], fmt: Formatter) -> dict[str, Any]:
        timeline = figures["timeline"]
        minutes = [_("%(n)s min", n=i) for i in range(len(timeline["concurrent"]))]
        steps = [
            ("viewers", _("Viewers")),
            ("product_clicks", _("Product clicks")),
            ("add_to_cart", _("Add to cart")),
            ("checkouts", _("Checkouts")),
            ("orders", _("Orders")),
        ]
        funnel = [(label, figures["funnel"]["live"][key]) for key, label in steps]
        replay_funnel = [(label, figures["funnel"]["replay"][key]) for key, label in steps]
        return {
            "concurrent": charts.area(
                _("Viewers watching, minute by minute"), timeline["concurrent"], minutes
            ),
            "activity": charts.bars(
                _("Chat messages and hearts per minute"),
                [(_("Chat messages"), timeline["chat"]), (_("Hearts"), timeline["likes"])],
                minutes,
            ),
            "funnel": charts.hbars(_("From viewers to orders"), funnel, fmt.count),
            "replay_funnel": charts.hbars(
                _("Replay: from viewers to orders"), replay_funnel, fmt.count
            ),
            "channels": charts.hbars(
                _("Where viewers came from"),
                [(_(NAMES.get(c, c)), n) for c, n in figures["channels"].items()],
                fmt.count,
            ),
            "devices": charts.hbars(
                _("Devices"),
                [(_(NAMES.get(d, d)), n) for d, n in figures["devices"].items()],
                fmt.count,
            ),
        }

    async def across_mine(since: float | None, until: float | None) -> list[dict[str, Any]]:
        """The trend across the shows whose KPIs the signed-in user may read: an admin's
        is the whole shop's, a host's covers the shows they hosted."""
        rows = await reports.across(since, until)
        mine = await access.permitted(svc.db, current_user(), "kpis", [r["show"] for r in rows])
        ids = {s.id for s in mine}
        return [r for r in rows if r["show"].id in ids]

    @bp.get("/admin/shows/<int:show_id>/kpis")
    @readers_only
    async def show_kpis(show_id: int) -> ResponseReturnValue:
        show = await access.show_for(svc.db, current_user(), show_id, "kpis")
        figures = await reports.for_show(show)
        fmt = formatter()
        lineup = {str(p.id): p for p in await shows.lineup(svc.db, show.id)}
        products = [
            {"name": lineup[p].name if p in lineup else f"#{p}", **v}
            for p, v in figures["products"].items()
        ]
        return await render(
            "admin/show_kpis.html",
            show=show,
            figures=figures,
            sections=[
                (_("Audience"), figure_rows(HEADLINE + AUDIENCE, figures, fmt)),
                (_("Engagement"), figure_rows(ENGAGEMENT, figures, fmt)),
                (_("Sales"), figure_rows(SALES, figures, fmt)),
                (_("Replay"), figure_rows(REPLAY, figures, fmt)),
            ],
            charts=charts_for(figures, fmt),
            products=products,
            definitions=[(_(FIGURES[k][0]), _(FIGURES[k][1])) for k in FIGURES],
        )

    @bp.get("/admin/kpis")
    @readers_only
    async def across() -> ResponseReturnValue:
        try:
            since, until, start, end = date_range()
        except ValueError as exc:
            return await render("admin/kpis.html", 400, rows=[], error=str(exc), start="", end="")
        chosen = request.args.get("figure", "viewers")
        if chosen not in FIGURES:
            return await render(
                "admin/kpis.html", 400, rows=[], error=_("Unknown figure."), start=start, end=end
            )
        rows = await across_mine(since, until)
        fmt = formatter()
        labels = [
            locales.format_date(r["show"].starts_at, g.shop.timezone, g.lang, "short") for r in rows
        ]
        label = _(FIGURES[chosen][0])
        trend = {
            "chosen": charts.bars(
                _("%(figure)s, show after show", figure=label),
                [(label, [r["kpis"][chosen] for r in rows])],
                labels,
                lambda v: fmt.figure(chosen, v),
            ),
            "rates": charts.bars(
                _("Engagement and conversion, show after show"),
                [
                    (_("Engagement"), [r["kpis"]["engagement_rate"] for r in rows]),
                    (_("Conversion"), [r["kpis"]["conversion_rate"] for r in rows]),
                ],
                labels,
                fmt.rate,
            ),
        }
        table = [
            {
                "show": r["show"],
                "cells": [fmt.figure(k, r["kpis"][k]) for k in TREND],
            }
            for r in rows
        ]
        return await render(
            "admin/kpis.html",
            rows=table,
            columns=[(_(FIGURES[k][0]), _(FIGURES[k][1])) for k in TREND],
            trend=trend,
            figures=[(k, _(FIGURES[k][0])) for k in FIGURES],
            chosen=chosen,
            chosen_label=label,
            start=start,
            end=end,
            error=None,
        )

    @bp.get("/admin/kpis.csv")
    @readers_only
    async def across_csv() -> ResponseReturnValue:
        try:
            since, until, _start, _end = date_range()
        except ValueError as exc:
            return Response(str(exc), status=400, content_type="text/plain; charset=utf-8")
        body = kpis_csv(await across_mine(since, until))
        return Response(
            body,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="vitrine-kpis.csv"'},
        )

    @bp.get("/admin/shows/<int:show_id>/events.csv")
    @readers_only
    async def raw_events(show_id: int) -> ResponseReturnValue:
        show = await access.show_for(svc.db, current_user(), show_id, "kpis")
        body = events_csv(await show_events(svc.db, show.id))
        return Response(
            body,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="show-{show.id}-events.csv"'},
        )

    def api_refusal() -> ResponseReturnValue | None:
        user = current_user()
        if user is None:
            return jsonify({"error": "sign in as staff first"}), 401
        if user.role not in READERS:
            return jsonify({"error": "only admins and hosts read KPIs"}), 403
        return None

    @bp.get("/api/kpis/shows/<int:show_id>")
    async def api_show(show_id: int) -> ResponseReturnValue:
        if (refusal := api_refusal()) is not None:
            return refusal
        show = await shows.get_show(svc.db, show_id)
        if show is None:
            return jsonify({"error": f"there is no show {show_id}"}), 404
        if not await access.may(svc.db, current_user(), "kpis", show):
            return jsonify({"error": "only an admin or this show's host reads its KPIs"}), 403
        return jsonify({"show": show.id, "title": show.title, **await reports.for_show(show)})

    @bp.get("/api/kpis")
    async def api_across() -> ResponseReturnValue:
        if (refusal := api_refusal()) is not None:
            return refusal
        try:
            since, until, _start, _end = date_range()
        except ValueError as exc:
            return jsonify({"error": str(exc)}), 400
        rows = await across_mine(since, until)
        return jsonify(
            {
                "shows": [
                    {
                        "show": r["show"].id,
                        "title": r["show"].title,
                        "starts_at": r["show"].starts_at,
                        **{k: r["kpis"][k] for k in ["live_seconds", *COLUMNS]},
                    }
                    for r in rows
                ],
                "generated_at": time.time(),
            }
        )

    return bp


NAMES = {
    "mobile": N_("Mobile"),
    "tablet": N_("Tablet"),
    "desktop": N_("Desktop"),
    "unknown": N_("Unknown"),
    "direct": N_("Direct"),
}
