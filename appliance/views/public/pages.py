"""The viewer site: home, show pages, calendar files, brand stylesheet, uploads, health."""

from __future__ import annotations

import json
import re
import secrets
import time

from quart import Blueprint, Response, abort, g, request, send_file

from appliance.catalog import calendar, shows
from appliance.hls.urls import playlist_url
from appliance.live.bridge import ice_servers
from appliance.replays import content
from appliance.services import Services
from appliance.views.public.replays import visible_replay
from appliance.views.web import VIEWER_COOKIE, render, show_or_404, valid_viewer

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("public", __name__)
    db = svc.db
    replays = svc.replays

    def show_url(show_id: int) -> str:
        return f"{svc.config.base_url}/shows/{show_id}"

    @bp.get("/")
    async def home() -> tuple[str, int]:
        live = await shows.list_shows(db, "live")
        upcoming = await shows.list_shows(db, "scheduled")
        return await render(
            "public/home.html",
            live=live,
            upcoming=upcoming,
            replays=await replays.published(24),
            now=int(time.time()),
        )

    @bp.get("/shows/<int:show_id>")
    async def show_page(show_id: int) -> Response:
        show = await show_or_404(db, show_id)
        products = await shows.lineup(db, show_id)
        google = calendar.google_calendar_link(
            title=show.title,
            description=show.description,
            starts_at=show.starts_at,
            ends_at=show.ends_at,
            url=show_url(show.id),
        )
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE))
        new_viewer = viewer is None
        if viewer is None:
            viewer = "v_" + secrets.token_urlsafe(16)
        replay = await visible_replay(replays, show.id) if show.status == "ended" else None
        chapters = await content.chapters(db, show.id, replay.timeline) if replay else []
        answered = await content.answered_live(db, show.id, replay.timeline) if replay else []
        body, status = await render(
            "public/replay.html" if replay else "public/show.html",
            show=show,
            replay=replay,
            chapters=chapters,
            answered_live=answered,
            viewer=viewer,
            heartbeat_seconds=svc.config.kpis.heartbeat_seconds,
            products=products,
            google_calendar=google,
            page_url=show_url(show.id),
            now=int(time.time()),
            # Per page: TURN credentials issued with media.turn_secret expire.
            ice_servers_json=json.dumps(ice_servers(svc.config)),
            # Where the player falls back to (player/hls.js); "" when HLS is off.
            hls_url=playlist_url(svc.config.media.hls_base_url, show.id)
            if svc.config.media.hls
            else "",
            hls_only=svc.config.media.hls and svc.config.media.hls_only,
        )
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "private, no-cache"  # the page names its viewer
        if new_viewer:
            # A random first-party id: how the live room and the KPIs tell viewers apart.
            # No personal data.
            # Inside the shop's site (?embed=1, docs/embed.md) over HTTPS: a cookie of that
            # site's partition (CHIPS), which a browser keeps in a cross-site frame.
            framed = request.args.get("embed") == "1" and svc.config.https
            response.set_cookie(
                VIEWER_COOKIE,
                viewer,
                max_age=365 * 86400,
                httponly=True,
                samesite="None" if framed else "Lax",
                secure=svc.config.https,
                partitioned=framed,
            )
        return response

    @bp.get("/shows/<int:show_id>/calendar.ics")
    async def show_calendar(show_id: int) -> Response:
        show = await show_or_404(db, show_id)
        body = calendar.show_event(
            show_id=show.id,
            title=show.title,
            description=show.description,
            starts_at=show.starts_at,
            ends_at=show.ends_at,
            url=show_url(show.id),
            shop_name=g.shop.name,
            now=int(time.time()),
        )
        return Response(
            body,
            content_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="show-{show.id}.ics"'},
        )

    @bp.get("/brand.css")
    async def brand_css() -> Response:
        color = g.shop.brand_color if _COLOR_RE.match(g.shop.brand_color) else "#d6336c"
        return Response(
            f":root {{ --brand: {color}; }}\n",
            content_type="text/css; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    @bp.get("/uploads/<name>")
    async def upload(name: str) -> Response:
        path = svc.uploads.path_of(name)
        if path is None:
            abort(404)
        response = await send_file(path, conditional=True)
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    @bp.get("/healthz")
    async def healthz() -> Response:
        await db.fetchval("SELECT 1")
        return Response('{"status": "ok"}', content_type="application/json")

    return bp
