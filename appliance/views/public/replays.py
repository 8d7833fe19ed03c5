"""A replay's files and what plays alongside it: the video and poster (with Range and
cache headers), the product chapters and the chat replay, as JSON for the replay page."""

from __future__ import annotations

import asyncio
import math

from quart import Blueprint, Response, abort, request, send_file
from quart.typing import ResponseReturnValue

from appliance.accounts.access import may
from appliance.catalog.shows import get_show
from appliance.replays import content
from appliance.replays.store import ReplayRow, ReplayStore
from appliance.services import Services
from appliance.views.web import current_user


async def visible_replay(replays: ReplayStore, show_id: int) -> ReplayRow | None:
    """The show's replay if the person asking may watch it: published, or they are the
    show's staff (who preview it before publishing)."""
    replay = await replays.get(show_id)
    if replay is None or replay.status != "ready":
        return None
    if replay.published:
        return replay
    show = await get_show(replays.db, show_id)
    return (
        replay if show is not None and await may(replays.db, current_user(), "view", show) else None
    )


def _seconds(name: str) -> float | str:
    """The query argument `name` as seconds, or why it is not."""
    try:
        value = float(request.args.get(name, ""))
    except ValueError:
        return f"{name} must be a number of seconds"
    if not math.isfinite(value) or value < 0:
        return f"{name} must be 0 or more seconds"
    return value


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("replay_files", __name__)
    db = svc.db
    replays = svc.replays

    async def replay_file(show_id: int, video: bool) -> Response:
        replay = await visible_replay(replays, show_id)
        if replay is None:
            abort(404)
        path = replays.video(show_id) if video else replays.poster(show_id)
        if not await asyncio.to_thread(path.is_file):
            abort(404)
        # Streamed from disk in chunks, Range requests answered with 206.
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

    @bp.get("/api/replays/<int:show_id>/chapters")
    async def chapters(show_id: int) -> ResponseReturnValue:
        replay = await visible_replay(replays, show_id)
        if replay is None:
            abort(404)
        found = await content.chapters(db, show_id, replay.timeline)
        body = {
            "show": show_id,
            "duration": replay.duration,
            "chapters": [
                {"t": c.t, "end": c.end, "product": c.product.id, "name": c.product.name}
                for c in found
            ],
            # Questions answered on camera: chapters of their own.
            "questions": await content.answered_live(db, show_id, replay.timeline),
        }
        return body, 200, {"Cache-Control": "no-cache"}

    @bp.get("/api/replays/<int:show_id>/chat")
    async def chat(show_id: int) -> ResponseReturnValue:
        start, end = _seconds("from"), _seconds("to")
        for problem in (start, end):
            if isinstance(problem, str):
                return {"error": problem}, 400
        assert isinstance(start, float) and isinstance(end, float)
        if end <= start:
            return {"error": "to must be after from"}, 400
        if end - start > content.MAX_WINDOW:
            return {"error": f"ask for at most {content.MAX_WINDOW:g} s at a time"}, 400
        replay = await visible_replay(replays, show_id)
        if replay is None:
            abort(404)
        window = await content.chat_window(db, show_id, replay.timeline, start, end)
        polls = await content.polls_window(db, show_id, replay.timeline, start, end)
        body = {
            "from": start,
            "to": end,
            "messages": window.messages,
            "cut": window.cut,
            "polls": polls,
        }
        return body, 200, {"Cache-Control": "no-cache"}

    return bp
