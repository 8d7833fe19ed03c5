"""`POST /api/conversions` (signed, from the shop's server) and
`POST /api/conversions/beacon` (unsigned, from the thank-you page snippet).

Both answer 201 for a new order (or a signed report replacing an unsigned one), 200 for an
order id already recorded, and a 4xx with a JSON `error` for anything else; a refused
report stores nothing.
"""

from __future__ import annotations

import time

from quart import Blueprint, Response, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.accounts.security import SlidingWindowLimiter
from appliance.kpis import conversions
from appliance.kpis.events import BadEvent
from appliance.services import Services
from appliance.views.web import client_address

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


def answer(status: int, body: dict[str, object], cors: bool = False) -> ResponseReturnValue:
    response = jsonify(body)
    if cors:
        response.headers.update(CORS)
    return response, status


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("conversions_api", __name__)
    signed_limit = SlidingWindowLimiter(600, 60.0)  # per address: a busy shop's webhooks
    beacon_limit = SlidingWindowLimiter(10, 60.0)  # per address: one buyer's thank-you pages

    async def take(signed: bool) -> ResponseReturnValue:
        cors = not signed
        limiter = signed_limit if signed else beacon_limit
        address = client_address(svc.config.server)
        if limiter.blocked(address):
            return answer(429, {"error": "too many reports: slow down"}, cors)
        limiter.hit(address)
        if (request.content_length or 0) > conversions.MAX_BODY:
            return answer(413, {"error": "the report is too large"}, cors)
        body = await request.get_data(cache=False)
        assert isinstance(body, bytes)
        if len(body) > conversions.MAX_BODY:
            return answer(413, {"error": "the report is too large"}, cors)
        if signed:
            secret = await conversions.get_secret(svc.db)
            given = request.headers.get(conversions.SIGNATURE_HEADER)
            if not conversions.signature_ok(secret, body, given):
                return answer(
                    401,
                    {"error": f"missing or wrong {conversions.SIGNATURE_HEADER} (see Settings)"},
                )
        shop = await svc.shop()
        try:
            conv = conversions.parse(body, shop.currency, time.time())
            show_id = await conversions.attribute(svc.db, conv)
            # A beacon repeating a known order changes nothing; a new one must be backed
            # by what its viewer really added to the cart.
            if not signed and not await conversions.known_order(svc.db, conv.order_id):
                await conversions.check_beacon(svc.db, conv, show_id)
        except BadEvent as exc:
            return answer(400, {"error": str(exc)}, cors)
        outcome = await conversions.record(svc.db, conv, show_id, signed)
        if outcome == conversions.DUPLICATE:
            return answer(200, {"status": outcome, "order_id": conv.order_id}, cors)
        if outcome == conversions.REPLACED:  # it may keep the show the beacon found
            show_id = await svc.db.fetchval(
                "SELECT show_id FROM orders WHERE order_id = ?", (conv.order_id,)
            )
        return answer(201, {"status": outcome, "order_id": conv.order_id, "show": show_id}, cors)

    @bp.post("/api/conversions")
    async def signed_report() -> ResponseReturnValue:
        return await take(signed=True)

    @bp.post("/api/conversions/beacon", provide_automatic_options=False)
    async def beacon_report() -> ResponseReturnValue:
        return await take(signed=False)

    @bp.route("/api/conversions/beacon", methods=["OPTIONS"])
    async def beacon_preflight() -> Response:
        return Response(status=204, headers=CORS)

    return bp
