"""The live room as a cacheable HTTP feed: `GET /rooms/<show>/feed` and `?after=<seq>`.

Without `after`: the room's state as a joining socket gets it, and the feed's newest
number. With `after`: the broadcast frames numbered above it (each a JSON array of the
messages a socket got in one tick), held up to HOLD_SECONDS until there is one (a long
poll); `{"reset": true}` when some were no longer kept and the reader starts again.
Frames are the same bytes for every reader and the answers carry no cookie and no
`Vary: Cookie`, so a cache in front collapses readers into about one request per tick.
Sending is `POST /api/rooms/<show>/say` (appliance/views/api/say.py), on the same blueprint.
"""

from __future__ import annotations

import json

from quart import Blueprint, Response, request
from quart.typing import ResponseReturnValue

from appliance.room.handlers import RoomService
from appliance.services import Services
from appliance.views.api import say

HOLD_SECONDS = 15.0
HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Vary": "Origin",
    # Short: a new frame comes every tick; a cache collapses readers of the same `after`.
    "Cache-Control": "public, max-age=1",
}


def _json(text: str, status: int = 200) -> Response:
    return Response(text, status=status, content_type="application/json", headers=HEADERS)


def blueprint(svc: Services, rooms: RoomService) -> Blueprint:
    bp = Blueprint("room_feed", __name__)
    say.routes(bp, svc, rooms)

    @bp.get("/rooms/<int:show_id>/feed")
    async def feed(show_id: int) -> ResponseReturnValue:
        raw = request.args.get("after")
        if raw is not None and (not raw.isascii() or not raw.isdigit() or len(raw) > 15):
            return _json(json.dumps({"error": "after must be a non-negative integer"}), 400)
        try:
            room = await rooms.hub.room(show_id)
        except LookupError:
            return _json(json.dumps({"error": "no such show"}), 404)
        feed = room.feed
        if raw is None:
            return _json(json.dumps({"seq": feed.seq, "state": room.state()}))
        after = int(raw)
        frames = feed.after(after)
        if frames == []:
            await feed.wait(after, HOLD_SECONDS)
            frames = feed.after(after)
        if frames is None:
            return _json(json.dumps({"reset": True, "seq": feed.seq}))
        seq = frames[-1][0] if frames else after
        # The frames' own text, not parsed and dumped again: the same bytes for everyone.
        body = f'{{"seq":{seq},"frames":[{",".join(text for _n, text in frames)}]}}'
        return _json(body)

    return bp
