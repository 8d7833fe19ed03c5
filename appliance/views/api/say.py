"""`POST /api/rooms/<show>/say`: a viewer on no socket sends to the live room.

The body is one message of the room protocol (docs/protocol.md), as a socket would send it:
`hello` first, then `chat`, `heart`, `vote`, `enter`, `claim_offer`, `claim_prize`,
`set_name`, `ping`. It goes through the room's own handler table
(appliance/room/handlers.py) for a client kept between requests (appliance/room/polled.py),
so moderation, bans, slow mode, word checks and the per-viewer buckets apply as on a
socket, and what it says reaches the sockets and the feed alike. The answer is
`{"messages": [...]}`: what the room sent to this viewer alone since its last request
(`welcome` and `state` after a `hello`, `named`, notices, `offer_code`...).

Only this site's pages may send (an `Origin` of this server and a JSON body: another site
cannot make a browser send that without CORS, which is not offered); the viewer is the
`vitrine_viewer` cookie. Requests are limited per viewer and per address (429), bodies to
4 KiB like a socket's frames (413); a malformed body is a 400, a message before `hello`
(or after the viewer's client left, idle for two minutes) a 409, a banned viewer a 403.
Staff actions are refused here (`not_allowed`): the moderation panel uses the socket.
"""

from __future__ import annotations

import json
import time
from typing import Any

from quart import Blueprint, Response, g, request
from quart.typing import ResponseReturnValue

from appliance.accounts.security import SlidingWindowLimiter
from appliance.room import polled
from appliance.room.handlers import HANDLERS, RoomService, notice
from appliance.room.hub import CLOSE_POLICY, Client, Room
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, allowed_origin, client_address, valid_viewer

MAX_BODY = 4096  # as a socket's frame
WINDOW = 10.0  # seconds
PER_VIEWER = 60  # requests per window: hearts in bursts, a ping every 25 s, chat
HEADERS = {"Cache-Control": "no-store"}


def _answer(status: int, **body: Any) -> Response:
    headers = dict(HEADERS)
    if status == 429:
        headers["Retry-After"] = str(int(WINDOW))
    return Response(
        json.dumps(body), status=status, content_type="application/json", headers=headers
    )


def routes(bp: Blueprint, svc: Services, rooms: RoomService) -> None:
    """Add the sending route to the room feed's blueprint."""
    cap = svc.config.limits.room_sockets_per_address
    by_viewer = SlidingWindowLimiter(PER_VIEWER, WINDOW, max_keys=50_000)
    # An address may hold `cap` viewers (a shop's Wi-Fi, a carrier's NAT), each at the
    # viewer's rate; without a cap, as many as the default cap.
    by_address = SlidingWindowLimiter(PER_VIEWER * (cap or 50), WINDOW, max_keys=50_000)

    @bp.post("/api/rooms/<int:show_id>/say")
    async def say(show_id: int) -> ResponseReturnValue:
        if not allowed_origin(
            request.headers.get("Origin"), svc.config.base_url, request.headers.get("Host")
        ):
            return _answer(403, error="only this site's pages may send to the room")
        if request.mimetype != "application/json":
            return _answer(415, error="the body must be JSON (Content-Type: application/json)")
        if (request.content_length or 0) > MAX_BODY:
            return _answer(413, error=f"a message is at most {MAX_BODY} bytes")
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE))
        if viewer is None:
            return _answer(400, error="no viewer cookie: open the show page first")
        address = client_address(svc.config.server)
        if by_viewer.blocked(viewer):
            return _answer(429, error="too many messages from this viewer: slow down")
        if by_address.blocked(address):
            return _answer(429, error="too many messages from this address: slow down")
        by_viewer.hit(viewer)
        by_address.hit(address)
        body = await request.get_data(cache=False)
        assert isinstance(body, bytes)
        if len(body) > MAX_BODY:
            return _answer(413, error=f"a message is at most {MAX_BODY} bytes")
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            return _answer(400, error="the body is not JSON")
        kind = message.get("type") if isinstance(message, dict) else None
        if not isinstance(kind, str) or kind not in HANDLERS:
            return _answer(400, error="the body must be a message object with a known type")
        try:
            room = await rooms.hub.room(show_id)
        except LookupError:
            return _answer(404, error=f"there is no show {show_id}")
        client = room.polled.get(viewer)
        if client is not None and client.close_code is not None:
            said = polled.held(client)  # a ban's notice, say
            room.drop_polled(viewer, client)
            if client.close_code == CLOSE_POLICY:
                return _answer(403, error="not allowed in this room", messages=said)
            client = None
        if client is None:
            if kind != "hello":
                return _answer(409, error="say hello first")
            client = Client(viewer, address, g.translations, outlet=polled.HeldOutlet())
            if room.is_banned(client):
                notice(client, "banned")
                return _answer(403, error="not allowed in this room", messages=polled.held(client))
            if not polled.join(room, client, cap * polled.POLLED_FACTOR):
                notice(client, "too_many_connections")
                return _answer(
                    429, error="too many viewers from this address", messages=polled.held(client)
                )
        elif kind == "hello":
            client.said_hello = False  # the page again (reloaded, back from its socket)
        return await _handle(rooms, room, client, message)


async def _handle(rooms: RoomService, room: Room, client: Client, message: Any) -> Response:
    client.heard = time.monotonic()
    if not client.frame_bucket.take():
        return _answer(429, error="too many messages from this viewer: slow down")
    await rooms.handle(room, client, message)
    said = polled.held(client)
    if client.close_code == CLOSE_POLICY:
        room.drop_polled(client.viewer, client)
        return _answer(403, error="not allowed in this room", messages=said)
    return _answer(200, messages=said)
