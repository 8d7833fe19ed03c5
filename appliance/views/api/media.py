"""WHIP (RFC 9725) publishing and WHEP playback over HTTP, and the live status API.

Every request is checked before the media plane sees it: content type (415), size
(413), bearer token (401, on DELETE and PATCH too), the show (404), its state (409),
and the SDP itself (400). No peer connection outlives a refused request.
"""

from __future__ import annotations

from quart import Blueprint, Response, abort, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.accounts.security import same_secret
from appliance.catalog import shows
from appliance.live.bridge import LiveShows
from appliance.services import Services
from appliance.views.web import client_address, current_user, show_or_404, staff_required
from media.offers import MAX_OFFER_BYTES, BadOffer
from media.plane import NotLive, TooManyFromOne, TooManyViewers

SDP = "application/sdp"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag",
}


def plain(message: str, status: int, **headers: str) -> Response:
    return Response(
        message + "\n",
        status=status,
        content_type="text/plain; charset=utf-8",
        headers={**CORS, **headers},
    )


async def read_offer() -> bytes:
    """The SDP body, or an HTTP error for the wrong type or size."""
    ctype = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if ctype != SDP:
        abort(plain(f"the body must be {SDP}", 415))
    length = request.content_length
    if length is not None and length > MAX_OFFER_BYTES:
        abort(plain(f"the offer must be at most {MAX_OFFER_BYTES} bytes", 413))
    body = await request.get_data(cache=False, as_text=False)
    assert isinstance(body, bytes)
    if len(body) > MAX_OFFER_BYTES:
        abort(plain(f"the offer must be at most {MAX_OFFER_BYTES} bytes", 413))
    return body


def blueprint(svc: Services, live: LiveShows) -> Blueprint:
    bp = Blueprint("media_http", __name__)
    db = svc.db

    def no_show() -> Response:
        return plain("no such show", 404)

    def bearer_ok(show: shows.Show) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and same_secret(token.strip(), show.stream_key)

    async def key_refusal(show: shows.Show) -> Response | None:
        """Why the request may not publish `show`, or None. The stream key is the
        capability a WHIP client (OBS, the studio) holds; a request that also carries a
        signed-in user must come from someone who may publish the show."""
        if not bearer_ok(show):
            return unauthorized()
        user = current_user()
        if user is not None and not await access.may(db, user, "publish", show):
            return plain("you may not publish this show", 403)
        return None

    def unauthorized() -> Response:
        return plain(
            "missing or wrong stream key", 401, **{"WWW-Authenticate": 'Bearer realm="vitrine"'}
        )

    def created(kind: str, show_id: int, session: str, answer: str) -> Response:
        links = ", ".join(f'<{s["urls"]}>; rel="ice-server"' for s in live.ice_servers_for_links)
        headers = {**CORS, "Location": f"/{kind}/{show_id}/{session}", "ETag": f'"{session}"'}
        if links:
            headers["Link"] = links
        return Response(answer, status=201, content_type=SDP, headers=headers)

    def options(methods: str) -> Response:
        return Response(
            "",
            status=204,
            headers={**CORS, "Access-Control-Allow-Methods": methods, "Allow": methods},
        )

    def no_patch() -> Response:
        # aiortc supports neither trickle ICE nor ICE restarts: RFC 9725 section 4.3.1
        # says 405. A client reconnects with a new POST (and, for WHIP, the same key).
        return plain(
            "trickle ICE and ICE restarts are not supported; POST again",
            405,
            Allow="DELETE, OPTIONS",
        )

    @bp.route("/whip/<int:show_id>", methods=["OPTIONS"])
    @bp.route("/whep/<int:show_id>", methods=["OPTIONS"])
    async def endpoint_options(show_id: int) -> ResponseReturnValue:
        return options("POST, OPTIONS")

    @bp.route("/whip/<int:show_id>/<session>", methods=["OPTIONS"])
    @bp.route("/whep/<int:show_id>/<session>", methods=["OPTIONS"])
    async def session_options(show_id: int, session: str) -> ResponseReturnValue:
        return options("PATCH, DELETE, OPTIONS")

    # -- WHIP ----------------------------------------------------------------------

    @bp.route("/whip/<int:show_id>", methods=["POST"])
    async def whip_publish(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        if (denied := await key_refusal(show)) is not None:
            return denied
        offer = await read_offer()
        if show.status == "ended":
            return plain("this show has ended", 409)
        refusal = live.go_live_refusal(show)
        if refusal is not None:
            return plain(refusal, 507)  # Insufficient Storage
        try:
            session, answer = await live.plane.publish(str(show_id), offer)
        except BadOffer as exc:
            return plain(f"bad offer: {exc}", 400)
        return created("whip", show_id, session, answer)

    @bp.route("/whip/<int:show_id>/<session>", methods=["DELETE", "PATCH"])
    async def whip_session(show_id: int, session: str) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        if (denied := await key_refusal(show)) is not None:
            return denied
        if live.plane.publisher_session(str(show_id)) != session:
            return plain("no such session", 404)
        if request.method == "PATCH":
            return no_patch()
        await live.plane.stop_publishing(str(show_id), session)
        return plain("publishing stopped", 200)

    # -- WHEP ----------------------------------------------------------------------

    @bp.route("/whep/<int:show_id>", methods=["POST"])
    async def whep_play(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        offer = await read_offer()
        if show.status == "ended":
            return plain("this show has ended", 409)
        try:
            session, answer = await live.plane.watch(
                str(show_id),
                offer,
                client_address(svc.config.server),
                # The show's staff watch over WebRTC even when the show is full: the
                # viewers past media.max_viewers get its HLS rendition instead.
                reserved=await access.may(db, current_user(), "moderate", show),
            )
        except BadOffer as exc:
            return plain(f"bad offer: {exc}", 400)
        except NotLive:
            return plain(
                "the show is not on air right now; try again soon", 409, **{"Retry-After": "3"}
            )
        except TooManyViewers:
            return plain(
                "this show has as many viewers as it can take", 503, **{"Retry-After": "30"}
            )
        except TooManyFromOne:
            wait = str(live.config.media.ice_connect_seconds)
            return plain(
                "too many video sessions of this show from your address; close another "
                f"player, or try again in {wait} seconds",
                429,
                **{"Retry-After": wait},
            )
        return created("whep", show_id, session, answer)

    @bp.route("/whep/<int:show_id>/<session>", methods=["DELETE", "PATCH"])
    async def whep_session(show_id: int, session: str) -> ResponseReturnValue:
        await show_or_404(db, show_id, no_show)
        # The session id is the viewer's capability: unguessable, known only to them.
        if not live.plane.has_viewer(str(show_id), session):
            return plain("no such session", 404)
        if request.method == "PATCH":
            return no_patch()
        await live.plane.leave(str(show_id), session)
        return plain("left", 200)

    # -- status ----------------------------------------------------------------------

    @bp.get("/api/shows/<int:show_id>/status")
    async def status(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(db, show_id, no_show)
        body = {"status": show.status, **live.status(show_id)}
        if await access.may(db, current_user(), "view", show):
            # The show's staff see why the recording stopped (a full disk): the show goes on.
            body["recording_problem"] = live.recording_problem(show_id)
        return body, 200, {"Cache-Control": "no-store"}

    @bp.get("/api/shows/<int:show_id>/media-stats")
    @staff_required()
    async def media_stats(show_id: int) -> ResponseReturnValue:
        # The relay's figures are for whoever runs or moderates this show.
        show = await show_or_404(db, show_id, no_show)
        user = current_user()
        if not (
            await access.may(db, user, "publish", show)
            or await access.may(db, user, "moderate", show)
        ):
            return plain("you may not see this show's figures", 403)
        return live.plane.stats(str(show_id)), 200, {"Cache-Control": "no-store"}

    return bp
