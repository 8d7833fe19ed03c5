"""The viewer site: home, show pages, calendar files, brand stylesheet, uploads, health."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time

from quart import Blueprint, Response, abort, g, request, send_file

from appliance import calendar, shows
from appliance.live import ice_servers
from appliance.services import Services
from appliance.users import ROLES
from appliance.views.room_ws import VIEWER_COOKIE, valid_viewer
from appliance.web import current_user, render, show_or_404

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("public", __name__)
    db = svc.db
    replays = svc.replays
    ice_json = json.dumps(ice_servers(svc.config))

    def show_url(show_id: int) -> str:
        return f"{svc.config.base_url}/shows/{show_id}"

    @bp.get("/")
    async def home() -> tuple[str, int]:
        live = await shows.list_shows(db, "live")
        upcoming = await shows.list_shows(db, "scheduled")
        past = (await shows.list_shows(db, "ended"))[:24]
        return await render(
            "public/home.html", live=live, upcoming=upcoming, past=past, now=int(time.time())
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
        replay = await replays.get(show.id) if show.status == "ended" else None
        body, status = await render(
            "public/show.html",
            show=show,
            replay=replay if replay and replay.status == "ready" and replay.published else None,
            viewer=viewer,
            heartbeat_seconds=svc.config.kpis.heartbeat_seconds,
            products=products,
            google_calendar=google,
            page_url=show_url(show.id),
            now=int(time.time()),
            ice_servers_json=ice_json,
        )
        response = Response(body, status=status, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "private, no-cache"  # the page names its viewer
        if new_viewer:
            # A random first-party id: how the live room and the KPIs tell viewers apart.
            # No personal data.
            response.set_cookie(
                VIEWER_COOKIE,
                viewer,
                max_age=365 * 86400,
                httponly=True,
                samesite="Lax",
                secure=svc.config.https,
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

    async def replay_file(show_id: int, video: bool) -> Response:
        replay = await replays.get(show_id)
        user = current_user()
        if replay is None or replay.status != "ready":
            abort(404)
        if not (replay.published or (user is not None and user.role in ROLES)):
            abort(404)
        path = replays.video(show_id) if video else replays.poster(show_id)
        if not await asyncio.to_thread(path.is_file):
            abort(404)
        response = await send_file(
            path, mimetype="video/mp4" if video else "image/jpeg", conditional=True
        )
        # Published replays are plain files a CDN or nginx may cache; previews are not.
        response.headers["Cache-Control"] = (
            "public, max-age=3600" if replay.published else "private, no-store"
        )
        response.headers["Accept-Ranges"] = "bytes"
        return response

    @bp.get("/replays/<int:show_id>.mp4")
    async def replay_video(show_id: int) -> Response:
        return await replay_file(show_id, video=True)

    @bp.get("/replays/<int:show_id>.jpg")
    async def replay_poster(show_id: int) -> Response:
        return await replay_file(show_id, video=False)

    @bp.get("/healthz")
    async def healthz() -> Response:
        await db.fetchval("SELECT 1")
        return Response('{"status": "ok"}', content_type="application/json")

    return bp
