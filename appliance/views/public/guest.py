"""The guest's page: `/guest/<show>/<token>`, opened from the link the host handed out.

No account: the token is the capability. A wrong or expired link is a 404, a revoked
one, or one already joined from another phone, a 403. The page sets a cookie holding its
own secret (the claim) that the guest's WHIP request carries: the link is bound to it at
the first join, so the guest's phone may reload and reconnect, and nobody else may join.
"""

from __future__ import annotations

import json
import secrets
import time

from quart import Blueprint, abort, make_response, request
from quart.typing import ResponseReturnValue

from appliance.live import guests
from appliance.live.bridge import ice_servers
from appliance.services import Services
from appliance.views.web import render, show_or_404


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("guest_page", __name__)
    db = svc.db

    @bp.get("/guest/<int:show_id>/<token>")
    async def page(show_id: int, token: str) -> ResponseReturnValue:
        show = await show_or_404(db, show_id)
        link = await guests.find(db, show_id, token)
        if link is None or link.problem(time.time()) == "expired":
            abort(404)
        cookie = guests.CLAIM_COOKIE.format(show_id)
        claim = request.cookies.get(cookie, "")
        if link.problem(time.time()) is not None or show.status == "ended":
            abort(403)
        if link.joined_at is not None and not await guests.join(db, link, claim):
            abort(403)  # joined from another phone: single use
        if not claim or len(claim) > guests.MAX_SECRET:
            claim = secrets.token_urlsafe(24)
        body, status = await render(
            "public/guest.html",
            show=show,
            token=token,
            ice_servers_json=json.dumps(ice_servers(svc.config)),
        )
        response = await make_response(body, status)
        response.set_cookie(
            cookie,
            claim,
            max_age=24 * 3600,
            httponly=True,
            samesite="Strict",
            secure=svc.config.https,
        )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token stays on this page
        return response

    return bp
