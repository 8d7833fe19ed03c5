"""`POST /api/events`: what viewer pages report for the KPIs (docs/kpis.md).

Pages send with `navigator.sendBeacon` (a text/plain body) or `fetch`; the viewer is the
first-party `vitrine_viewer` cookie the show page set. The answer is 204, or a 4xx that
says what was wrong; nothing of a refused report is stored.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from quart import Blueprint, Response, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.accounts.security import SlidingWindowLimiter
from appliance.catalog.shows import get_show
from appliance.kpis.events import (
    MAX_BODY,
    MAX_BUFFER,
    BadEvent,
    EventLog,
    catalogue_prices,
    parse_beacon,
)
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, allowed_origin, client_address, valid_viewer

SHOW_CACHE_SECONDS = 30.0
ADDRESS_FACTOR = 100  # many viewers share an address: a shop's Wi-Fi, a carrier's NAT


def problem(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def blueprint(svc: Services, log: EventLog) -> Blueprint:
    bp = Blueprint("kpi_events", __name__)
    per_minute = svc.config.kpis.events_per_minute
    by_viewer = SlidingWindowLimiter(per_minute, 60.0, max_keys=50_000)
    by_address = SlidingWindowLimiter(per_minute * ADDRESS_FACTOR, 60.0, max_keys=50_000)
    known: dict[int, float] = {}  # show id -> when it was last seen to exist

    async def show_exists(show_id: int) -> bool:
        now = time.monotonic()
        if now - known.get(show_id, -1e9) < SHOW_CACHE_SECONDS:
            return True
        if await get_show(svc.db, show_id) is None:
            return False
        if len(known) > 10_000:
            known.clear()
        known[show_id] = now
        return True

    @bp.post("/api/events")
    async def collect() -> ResponseReturnValue:
        origin = request.headers.get("Origin")
        if origin and not allowed_origin(origin, svc.config.base_url, request.headers.get("Host")):
            return problem(403, "reports are only accepted from this site's pages")
        if (request.content_length or 0) > MAX_BODY:
            return problem(413, f"the report is larger than {MAX_BODY} bytes")
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE))
        address = client_address(svc.config.server)
        body = await request.get_data(cache=False)
        assert isinstance(body, bytes)
        if len(body) > MAX_BODY:
            return problem(413, f"the report is larger than {MAX_BODY} bytes")
        host = urlsplit(svc.config.base_url).hostname or ""
        try:
            show_id, events = parse_beacon(
                body, viewer or "", request.headers.get("User-Agent", ""), host, time.time()
            )
        except BadEvent as exc:
            return problem(400, str(exc))
        assert viewer is not None  # parse_beacon refuses a report without one
        if by_viewer.blocked(viewer) or by_address.blocked(address):
            return problem(429, "too many reports: slow down")
        if not await show_exists(show_id):
            return problem(404, f"there is no show {show_id}")
        if log.pending + len(events) > MAX_BUFFER:
            log.dropped += len(events)
            return problem(503, "the server is busy: try again in a moment")
        events = await catalogue_prices(svc.db, events)
        for ts, kind, props in events:
            by_viewer.hit(viewer)
            by_address.hit(address)
            log.add(show_id, ts, viewer, kind, props)
        return Response(status=204)

    return bp
