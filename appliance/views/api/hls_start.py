""" "Watch from the start" of a live show over HLS (media/hls_start.py reads the recording).

- `GET /hls/<show>/start.m3u8`: an `EXT-X-PLAYLIST-TYPE:EVENT` playlist of the show's
  recording from its first fragment, growing as the show goes on; 404 when the show is
  not live, is not recorded (`media.record` off), or has nothing written yet. `HEAD` says
  the same without making the playlist (which grows with the show): pages ask it.
- `GET /hls/<show>/start/part-NNN.mp4`: a part of the recording, for the playlist's byte
  ranges (`Range` requests, 206).

Both are `no-store`: the part files grow while the show goes on, and a cache that keeps
a whole file would answer later ranges from a shorter copy. The start of a show is for
the few who ask for it; the live edge, which everyone reads, is the rendition's.
"""

from __future__ import annotations

import re

from quart import Blueprint, Response, request
from quart.helpers import send_file
from quart.typing import ResponseReturnValue

from appliance.live.bridge import LiveShows
from appliance.services import Services
from appliance.views.api.hls import CORS, PLAYLIST
from media.hls_start import StartIndex

PART_NAME = re.compile(r"^part-\d{1,6}\.mp4$")
NO_STORE = {**CORS, "Cache-Control": "no-store"}


def _missing(message: str) -> Response:
    return Response(message + "\n", 404, content_type="text/plain; charset=utf-8", headers=NO_STORE)


def blueprint(svc: Services, live: LiveShows) -> Blueprint:
    bp = Blueprint("hls_start", __name__)
    del svc
    indexes: dict[int, StartIndex] = {}  # the live shows' recordings, as read so far

    def index_of(show_id: int) -> StartIndex | None:
        recorder = live.plane.recording(str(show_id))
        folder = recorder.folder if recorder is not None else None
        if folder is None:
            indexes.pop(show_id, None)
            return None
        index = indexes.get(show_id)
        if index is None or index.folder != folder:
            for gone in [s for s in indexes if live.plane.recording(str(s)) is None]:
                del indexes[gone]
            index = indexes[show_id] = StartIndex(folder)
        return index

    @bp.get("/hls/<int:show_id>/start.m3u8")
    async def start_playlist(show_id: int) -> ResponseReturnValue:
        index = index_of(show_id)
        if request.method == "HEAD":  # the player asks whether to offer the button
            if index is None or not index.scan():
                return _missing("")
            return Response("", content_type=PLAYLIST, headers=NO_STORE)
        text = index.playlist("start/") if index is not None else None
        if text is None:
            return _missing("this show cannot be watched from the start right now")
        return Response(text, content_type=PLAYLIST, headers=NO_STORE)

    @bp.get("/hls/<int:show_id>/start/<name>")
    async def start_part(show_id: int, name: str) -> ResponseReturnValue:
        index = index_of(show_id)
        if index is None or not PART_NAME.match(name) or not (index.folder / name).is_file():
            return _missing("no such part of this show's recording")
        response = await send_file(index.folder / name, mimetype="video/mp4", conditional=True)
        response.headers.update(NO_STORE)
        return response

    return bp
