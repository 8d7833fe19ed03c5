"""The live room's websocket: `/ws/shows/<show>` (protocol in docs/protocol.md).

The room socket is the busiest path in Vitrine: every tick sends one frame to every
connected viewer. It is served as plain ASGI, in front of the Quart app, so the socket's
messages skip Quart's per-message work (a yield to the loop, a signal, a state check), and
frames are written straight to the connection's transport (appliance/room/wire.py).
Everything else about the connection matches the Quart views: the same origin check,
session cookie, viewer cookie and client address.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any, cast

from quart import Quart
from werkzeug.datastructures import Headers

from appliance.accounts import access
from appliance.accounts.sessions import signed_in_user
from appliance.catalog.shows import get_show
from appliance.i18n import locales
from appliance.room.handlers import RoomService, notice
from appliance.room.hub import CLOSE_POLICY, Client, Room
from appliance.room.wire import Outlet, QueuedOutlet, direct_outlet
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, allowed_origin, client_address, valid_viewer

log = logging.getLogger(__name__)
MAX_FRAME = 4096
ROOM_PATH = re.compile(r"^/ws/shows/(\d{1,10})$")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Handshake:
    """What the upgrade request said, shaped like a Quart websocket for the helpers that
    read one (client_address, the session interface)."""

    headers: Headers
    cookies: dict[str, str]
    remote_addr: str | None

    @classmethod
    def of(cls, scope: Scope) -> Handshake:
        headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]])
        cookies: dict[str, str] = {}
        jar: SimpleCookie = SimpleCookie()
        with contextlib.suppress(CookieError):
            jar.load(headers.get("Cookie", ""))
            cookies = {k: m.value for k, m in jar.items()}
        client = scope.get("client")
        return cls(headers, cookies, client[0] if client else None)


class RoomSocket:
    """The ASGI app in front of Quart: room sockets here, everything else to Quart."""

    def __init__(self, app: Quart, inner: ASGIApp, svc: Services, rooms: RoomService) -> None:
        self.app = app
        self.inner = inner
        self.svc = svc
        self.rooms = rooms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ROOM_PATH.match(scope.get("path", "")) if scope["type"] == "websocket" else None
        if match is None:
            await self.inner(scope, receive, send)
            return
        await self.serve(int(match.group(1)), scope, receive, send)

    async def refuse(self, scope: Scope, send: Send, status: int) -> None:
        """An HTTP answer instead of the upgrade, where the server can give one."""
        if "websocket.http.response" in scope.get("extensions", {}):
            body = f"{status}\n".encode()
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", b"text/plain"),
                        (b"content-length", b"%d" % len(body)),
                    ],
                }
            )
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": CLOSE_POLICY})

    async def serve(self, show_id: int, scope: Scope, receive: Receive, send: Send) -> None:
        svc, hub = self.svc, self.rooms.hub
        if (await receive())["type"] != "websocket.connect":
            return
        hs = Handshake.of(scope)
        if not allowed_origin(
            hs.headers.get("Origin"), svc.config.base_url, hs.headers.get("Host")
        ):
            await self.refuse(scope, send, 403)
            return
        try:
            room = await hub.room(show_id)
        except LookupError:
            await self.refuse(scope, send, 404)
            return
        # One address gets a bounded share of the room's sockets: without it one client
        # can open thousands (and each anonymous socket is a new viewer id).
        address = client_address(svc.config.server, hs)
        if not room.reserve(address, svc.config.limits.room_sockets_per_address):
            await self.crowded(show_id, hs, scope, send)
            return
        try:
            await self.join(show_id, room, hs, scope, receive, send)
        finally:
            room.release(address)

    async def crowded(self, show_id: int, hs: Handshake, scope: Scope, send: Send) -> None:
        """Too many sockets from one address: 429 where the server can answer over HTTP,
        else accepted, told why in a notice and closed with the policy code."""
        if "websocket.http.response" in scope.get("extensions", {}):
            await self.refuse(scope, send, 429)
            return
        await send({"type": "websocket.accept"})
        client = await self.client_of(hs, QueuedOutlet(), show_id)
        notice(client, "too_many_connections")
        client.close(CLOSE_POLICY)
        with contextlib.suppress(OSError):
            await client.outlet.run(send, lambda: CLOSE_POLICY)

    async def join(
        self, show_id: int, room: Room, hs: Handshake, scope: Scope, receive: Receive, send: Send
    ) -> None:
        svc, hub = self.svc, self.rooms.hub
        await send({"type": "websocket.accept"})
        direct = direct_outlet(send, scope) if svc.config.server.websocket_direct_writes else None
        client = await self.client_of(hs, direct or QueuedOutlet(), show_id)
        if not client.staff and room.is_banned(client):
            notice(client, "banned")
            client.close(CLOSE_POLICY)
        room.clients.add(client)
        reader = asyncio.ensure_future(self.read(room, client, receive))
        try:
            await client.outlet.run(send, lambda: client.close_code or 1000)
        except OSError:
            pass  # the connection went away under the writer
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            hub.leave(room, client)

    async def client_of(self, hs: Handshake, outlet: Outlet, show_id: int) -> Client:
        svc = self.svc
        shop = await svc.shop()
        lang = locales.pick_language(hs.headers.get("Accept-Language"), shop.language)
        viewer = valid_viewer(hs.cookies.get(VIEWER_COOKIE)) or "anon-" + secrets.token_urlsafe(12)
        client = Client(
            viewer=viewer,
            address=client_address(svc.config.server, hs),
            tr=svc.translations.get(lang, svc.translations["en"]),
            outlet=outlet,
        )
        session = await self.app.session_interface.open_session(self.app, cast(Any, hs))
        user = await signed_in_user(svc.db, session)  # None when ended, expired or inactive
        if user is not None and user.active:
            # Staff in this room only for whoever may moderate this show
            # (appliance/accounts/access.py); anyone else signed in is a plain viewer here.
            show = await get_show(svc.db, show_id)
            if show is not None and await access.may(svc.db, user, "moderate", show):
                client.staff_user, client.role, client.name = user.id, user.role, user.name
        return client

    async def read(self, room: Room, client: Client, receive: Receive) -> None:
        dropped = 0
        try:
            while client.close_code is None:
                # No timeout here (a timer and a task per message would be thousands of
                # live objects for the garbage collector): the room's tick closes clients
                # that have been silent too long (Room.close_idle).
                event = await receive()
                client.heard = time.monotonic()
                if event["type"] == "websocket.disconnect":
                    client.close(1000, discard=True)
                    return
                if event["type"] != "websocket.receive":
                    continue
                if not client.frame_bucket.take():
                    dropped += 1
                    if dropped > 200:  # far beyond anything a person can type or tap
                        client.close(CLOSE_POLICY)
                    continue
                data = event.get("text")
                if not isinstance(data, str) or len(data) > MAX_FRAME:
                    client.bad_frames += 1
                    notice(client, "bad_message")
                    continue
                try:
                    message = json.loads(data)
                except (ValueError, RecursionError):  # not JSON, or nested too deep
                    message = None  # answered with a bad_message notice
                await self.rooms.handle(room, client, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live room %s: a client's messages failed", room.show_id)
            client.close(1011)


def install(app: Quart, svc: Services, rooms: RoomService) -> None:
    """Put the room socket in front of the app's ASGI handling."""
    inner = cast(ASGIApp, app.asgi_app)
    app.asgi_app = RoomSocket(app, inner, svc, rooms)  # type: ignore[method-assign,assignment]
