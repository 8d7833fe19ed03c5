"""A live show's low-latency HLS rendition over HTTP (media/hls.py writes it).

- `GET /hls/<show>/index.m3u8`: the media playlist. With `_HLS_msn` (and `_HLS_part`)
  it is a blocking reload: held until the playlist has that segment (or part), at most
  HOLD_SECONDS, then answered as it is. Bad parameters are a 400.
- `GET /hls/<show>/<epoch>/init-<period>.mp4`, `.../p<part>.m4s`, `.../s<msn>.m4s`: the
  init segments, parts and segments, immutable (their names never come back: the epoch is
  new for every rendition). A part asked for before it exists (the playlist's preload
  hint) is held until it does. `GET /hls/<show>/init.mp4` is the newest init segment.

Before any work every request asks the process's budget (appliance/hls/admission.py):
over `media.hls_answers_per_second` the gate `install` puts in front of the app answers a
503 with `Retry-After: 1` that players retry; over `media.hls_held_requests`, a request to
be held is the same 503 here. So HLS clients never starve the show itself.

These views read no show from the database: a rendition exists only while its show is
live, so a viewer asking for the newest part costs a dictionary look-up. The files are the
same for everyone (no `Vary: Cookie`, no cookie set), so a CDN or nginx may cache them
(docs/media.md); CORS lets pages served from another host (a CDN) read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

from quart import Blueprint, Quart, Response, request
from quart.typing import ResponseReturnValue

from appliance.hls.admission import ASGIApp, HlsGate
from appliance.live.bridge import LiveShows
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, client_address, valid_viewer
from media.hls import PART_TARGET, Rendition
from media.plane import MediaPlane

HOLD_SECONDS = 6.0  # longest a blocking request is held: three target durations
PLAYLIST = "application/vnd.apple.mpegurl"
MP4 = "video/mp4"
IMMUTABLE = "public, max-age=31536000, immutable"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, OPTIONS",
    "Access-Control-Max-Age": "86400",
    # Said here so the app's default (Accept-Language, Cookie) does not make a cache keep
    # one copy per viewer's cookie.
    "Vary": "Origin",
}


def _plain(message: str, status: int, **headers: str) -> Response:
    return Response(
        message + "\n",
        status=status,
        content_type="text/plain; charset=utf-8",
        headers={**CORS, "Cache-Control": "no-store", **headers},
    )


def _busy() -> Response:
    """Over the process's budget: players (hls.js, Safari) retry a 503 after a second."""
    return _plain("too many HLS requests right now, retry in a second", 503, **RETRY)


RETRY = {"Retry-After": "1"}


def _number(name: str) -> int | None:
    """A query parameter as a small non-negative integer; ValueError if it is not one."""
    raw = request.args.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9:
        raise ValueError(name)
    return int(raw)


def blueprint(
    svc: Services,
    live: LiveShows,
    plane: MediaPlane | None = None,
    prefix: str = "/hls/<int:show_id>",
    name: str = "hls",
) -> Blueprint:
    """The views of the show's rendition; with `plane` and `prefix`, of another plane's
    (the guest's: `/hls/<show>/guest/`, appliance/live/guest_stage.py)."""
    bp = Blueprint(name, __name__)
    source = plane or live.plane
    admission = svc.hls_admission

    async def held(ready: Callable[[], bool], rendition: Rendition) -> bool:
        """Wait (at most HOLD_SECONDS) for `ready` in one of the budget's places for held
        requests; False, without waiting, when every place is taken."""
        if ready():
            return True
        if not admission.hold():
            return False
        try:
            await rendition.wait(ready, HOLD_SECONDS)
        finally:
            admission.release()
        return True

    def rendition_of(show_id: int) -> Rendition | None:
        return source.rendition(str(show_id))

    def not_here() -> Response:
        # Not live, a VP8 publisher (WebRTC only), or nothing written yet.
        return _plain("no HLS rendition of this show right now", 404)

    @bp.route(prefix + "/<path:rest>", methods=["OPTIONS"])
    async def preflight(show_id: int, rest: str) -> ResponseReturnValue:
        return Response("", status=204, headers=CORS)

    @bp.get(prefix + "/index.m3u8")
    async def playlist(show_id: int) -> ResponseReturnValue:
        try:
            msn, part = _number("_HLS_msn"), _number("_HLS_part")
        except ValueError as exc:
            return _plain(f"{exc} must be a non-negative integer", 400)
        if part is not None and msn is None:
            return _plain("_HLS_part needs _HLS_msn", 400)
        rendition = rendition_of(show_id)
        if rendition is None:
            return not_here()
        # Counted for the staff's figures: the page's viewer id, else the address.
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE))
        rendition.note_client(viewer or client_address(svc.config.server), time.monotonic())
        if msn is not None:
            # RFC 8216bis 6.2.5.2: more than two segments ahead is a client error.
            if msn > rendition.last_msn() + 2:
                return _plain("_HLS_msn is too far ahead of the playlist", 400)
            if part is not None and part * PART_TARGET > 2 * HOLD_SECONDS:
                return _plain("_HLS_part is larger than a segment has parts", 400)
            if not await held(lambda: rendition.has(msn, part), rendition):
                return _busy()
        text = rendition.playlist()
        if text is None:
            return not_here()
        # A blocking response is for one client's position: not cached. A plain one
        # changes every part: cached at most a second.
        cache = "no-store" if msn is not None else "public, max-age=1"
        return Response(text, content_type=PLAYLIST, headers={**CORS, "Cache-Control": cache})

    def media(data: bytes | None, cache: str = IMMUTABLE) -> Response:
        if data is None:
            return _plain("no such part or segment (it may have left the window)", 404)
        return Response(data, content_type=MP4, headers={**CORS, "Cache-Control": cache})

    @bp.get(prefix + "/init.mp4")
    async def newest_init(show_id: int) -> ResponseReturnValue:
        rendition = rendition_of(show_id)
        if rendition is None:
            return not_here()
        return media(rendition.init(), "public, max-age=1")

    @bp.get(prefix + "/<epoch>/init-<int:period>.mp4")
    async def init(show_id: int, epoch: str, period: int) -> ResponseReturnValue:
        rendition = rendition_of(show_id)
        if rendition is None or epoch != rendition.epoch:
            return not_here()
        return media(rendition.init(period))

    @bp.get(prefix + "/<epoch>/p<int:number>.m4s")
    async def part(show_id: int, epoch: str, number: int) -> ResponseReturnValue:
        rendition = rendition_of(show_id)
        if rendition is None or epoch != rendition.epoch:
            return not_here()
        if number > rendition.next_part + 2:
            return _plain("that part is too far ahead", 404)
        # The preload hint names the next part before it exists: hold until it does.
        if not await held(lambda: rendition.has_part(number), rendition):
            return _busy()
        return media(rendition.part(number))

    @bp.get(prefix + "/<epoch>/s<int:msn>.m4s")
    async def segment(show_id: int, epoch: str, msn: int) -> ResponseReturnValue:
        rendition = rendition_of(show_id)
        if rendition is None or epoch != rendition.epoch:
            return not_here()
        return media(rendition.segment(msn))

    return bp


def install(app: Quart, svc: Services) -> None:
    """Put the HLS budget's gate in front of the app's ASGI handling."""
    inner = cast(ASGIApp, app.asgi_app)
    app.asgi_app = HlsGate(inner, svc.hls_admission)  # type: ignore[method-assign,assignment]
