"""The guest on the live over HTTP: the guest's WHIP (`/whip/<show>/guest`, the guest
link's token as bearer), the viewers' second WHEP session (`/whep/<show>/guest`), and the
stage (`GET /api/shows/<show>/stage`). Checked as the host's WHIP and WHEP are
(appliance/views/api/media.py); a dead link is a 401 to WHIP, never a 500.
"""

from __future__ import annotations

import time

from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.live import guests
from appliance.live.guest_stage import Guests
from appliance.services import Services
from appliance.views.api.media import CORS, SDP, plain, read_offer
from appliance.views.web import client_address, current_user, show_or_404
from media.offers import BadOffer
from media.plane import NotLive, TooManyFromOne, TooManyViewers


def blueprint(svc: Services, stage: Guests) -> Blueprint:
    bp = Blueprint("guest_http", __name__)
    db = svc.db
    plane = stage.plane

    def no_show() -> Response:
        return plain("no such show", 404)

    def token() -> str:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return request.args.get("token", "")

    def refused() -> Response:
        return plain(
            "this guest link is wrong, expired, already used or revoked",
            401,
            **{"WWW-Authenticate": 'Bearer realm="vitrine-guest"'},
        )

    def created(kind: str, show_id: int, session: str, answer: str) -> Response:
        headers = {**CORS, "Location": f"/{kind}/{show_id}/guest/{session}", "ETag": f'"{session}"'}
        return Response(answer, status=201, content_type=SDP, headers=headers)

    @bp.route("/whip/<int:show_id>/guest", methods=["OPTIONS"])
    @bp.route("/whep/<int:show_id>/guest", methods=["OPTIONS"])
    @bp.route("/whip/<int:show_id>/guest/<session>", methods=["OPTIONS"])
    @bp.route("/whep/<int:show_id>/guest/<session>", methods=["OPTIONS"])
    async def preflight(show_id: int, session: str = "") -> ResponseReturnValue:
        methods = "DELETE, OPTIONS" if session else "POST, OPTIONS"
        return Response("", status=204, headers={**CORS, "Access-Control-Allow-Methods": methods})

    @bp.post("/whip/<int:show_id>/guest")
    async def whip(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        link = await guests.find(db, show_id, token())
        if link is None or link.problem(time.time()) is not None:
            return refused()
        offer = await read_offer()
        if show.status != "live":
            return plain("the show is not live: the guest joins a live show", 409)
        claim = request.cookies.get(guests.CLAIM_COOKIE.format(show_id), "")
        if not await guests.join(db, link, claim):
            return refused()
        try:
            session, answer = await plane.publish(str(show_id), offer)
        except BadOffer as exc:
            return plain(f"bad offer: {exc}", 400)
        return created("whip", show_id, session, answer)

    @bp.delete("/whip/<int:show_id>/guest/<session>")
    async def whip_leave(show_id: int, session: str) -> ResponseReturnValue:
        await show_or_404(db, show_id, no_show)
        if plane.publisher_session(str(show_id)) != session:
            return plain("no such session", 404)  # the session id is the capability
        await plane.stop_publishing(str(show_id), session)
        return plain("publishing stopped", 200)

    @bp.post("/whep/<int:show_id>/guest")
    async def whep(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        offer = await read_offer()
        if show.status == "ended":
            return plain("this show has ended", 409)
        try:
            session, answer = await plane.watch(
                str(show_id),
                offer,
                client_address(svc.config.server),
                reserved=await access.may(db, current_user(), "moderate", show),
            )
        except BadOffer as exc:
            return plain(f"bad offer: {exc}", 400)
        except NotLive:
            return plain("no guest on the stage right now", 409, **{"Retry-After": "3"})
        except TooManyViewers:
            return plain("the guest's video is full: use HLS", 503, **{"Retry-After": "30"})
        except TooManyFromOne:
            return plain("too many guest video sessions from your address", 429)
        return created("whep", show_id, session, answer)

    @bp.delete("/whep/<int:show_id>/guest/<session>")
    async def whep_leave(show_id: int, session: str) -> ResponseReturnValue:
        await show_or_404(db, show_id, no_show)
        if not plane.has_viewer(str(show_id), session):
            return plain("no such session", 404)
        await plane.leave(str(show_id), session)
        return plain("left", 200)

    @bp.get("/api/shows/<int:show_id>/stage")
    async def current(show_id: int) -> ResponseReturnValue:
        await show_or_404(db, show_id, no_show)
        body = stage.stage(show_id).message()
        body["hls"] = plane.rendition(str(show_id)) is not None
        return body, 200, {"Cache-Control": "no-store"}

    return bp
