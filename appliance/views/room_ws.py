"""The live room's websocket: `/ws/shows/<show>` (protocol in docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from urllib.parse import urlsplit

from quart import Blueprint, abort, session, websocket

from appliance import i18n
from appliance.room import CLOSE_POLICY, Client
from appliance.room_handlers import RoomService, notice
from appliance.services import Services
from appliance.users import get_user
from appliance.web import client_address

log = logging.getLogger(__name__)
MAX_FRAME = 4096
IDLE_SECONDS = 60.0
VIEWER_COOKIE = "vitrine_viewer"


def valid_viewer(value: str | None) -> str | None:
    """The viewer id from the cookie the show page sets, if it looks like one."""
    if not value or not 16 <= len(value) <= 64:
        return None
    return value if value.replace("-", "").replace("_", "").isalnum() else None


def allowed_origin(origin: str | None, base_url: str, host: str | None) -> bool:
    """Only pages of this server may open the socket (no cross-site websocket hijacking)."""
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    if origin.rstrip("/") == base_url.rstrip("/"):
        return True
    return bool(host) and parts.netloc == host


def blueprint(svc: Services, rooms: RoomService) -> Blueprint:
    bp = Blueprint("room_ws", __name__)
    hub = rooms.hub

    @bp.websocket("/ws/shows/<int:show_id>")
    async def room_socket(show_id: int) -> None:
        headers = websocket.headers
        if not allowed_origin(headers.get("Origin"), svc.config.base_url, headers.get("Host")):
            abort(403)
        try:
            room = await hub.room(show_id)
        except LookupError:
            abort(404)
        shop = await svc.shop()
        lang = i18n.pick_language(headers.get("Accept-Language"), shop.language)
        viewer = valid_viewer(websocket.cookies.get(VIEWER_COOKIE))
        if viewer is None:
            viewer = "anon-" + secrets.token_urlsafe(12)
        address = client_address(svc.config.server.proxy_headers, websocket)
        client = Client(
            viewer=viewer, address=address, tr=svc.translations.get(lang, svc.translations["en"])
        )
        user_id = session.get("user_id")
        if isinstance(user_id, int):
            user = await get_user(svc.db, user_id)
            if user is not None and user.active:
                client.staff_user, client.role, client.name = user.id, user.role, user.name
        await websocket.accept()
        if not client.staff and room.is_banned(client):
            notice(client, "banned")
            client.close(CLOSE_POLICY)
        room.clients.add(client)
        reader = asyncio.ensure_future(_read(rooms, room, client))
        try:
            await _write(client)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            hub.leave(room, client)

    return bp


async def _write(client: Client) -> None:
    """Send the client's frames in order. A client that fell behind (several frames
    waiting) gets them as one frame: when the server is busy, each client costs one send
    per turn of the loop instead of one per tick, so a backlog drains instead of growing."""
    queue = client.queue
    while True:
        frames = [await queue.get()]
        while not queue.empty():
            frames.append(queue.get_nowait())
        closing = frames[-1] is None  # the close is always the last thing queued
        data = [f for f in frames if f is not None]
        if data:
            await websocket.send(data[0] if len(data) == 1 else merge_frames(data))
        if closing:
            await websocket.close(client.close_code or 1000)
            return


def merge_frames(frames: list[str]) -> str:
    """Frames are JSON arrays of messages: several become one array, in order."""
    return "[" + ",".join(body for f in frames if (body := f[1:-1].strip())) + "]"


async def _read(rooms: RoomService, room: object, client: Client) -> None:
    from appliance.room import Room

    assert isinstance(room, Room)
    dropped = 0
    try:
        while client.close_code is None:
            data = await asyncio.wait_for(websocket.receive(), IDLE_SECONDS)
            if not client.frame_bucket.take():
                dropped += 1
                if dropped > 200:  # far beyond anything a person can type or tap
                    client.close(CLOSE_POLICY)
                continue
            if not isinstance(data, str) or len(data) > MAX_FRAME:
                client.bad_frames += 1
                notice(client, "bad_message")
                continue
            try:
                message = json.loads(data)
            except ValueError:
                message = None
            await rooms.handle(room, client, message)
    except TimeoutError:
        client.close(1001)  # silent for a minute: gone
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("live room %s: a client's messages failed", room.show_id)
        client.close(1011)
