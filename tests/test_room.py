"""The live room over real websockets against the real server (docs/protocol.md)."""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import re
import sqlite3
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import PASSWORD, LiveServer


class Peer:
    """One websocket client that collects every message the server sends."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.closed: int | None = None
        self._task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        try:
            async for frame in self.ws:
                batch = json.loads(frame)
                assert isinstance(batch, list), "the server sends arrays of messages"
                self.messages.extend(batch)
        except ConnectionClosed:
            pass
        self.closed = self.ws.close_code

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]

    async def wait(self, kind: str, predicate=lambda m: True, limit: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + limit
        while True:
            for m in self.of(kind):
                if predicate(m):
                    return m
            assert time.monotonic() < deadline, f"no {kind} message; got {self.messages[-5:]}"
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        await self.ws.close()
        await self._task


class Room:
    def __init__(self, server: LiveServer, show_id: int) -> None:
        self.server = server
        self.show_id = show_id
        self.url = server.url.replace("http://", "ws://") + f"/ws/shows/{show_id}"
        self.peers: list[Peer] = []

    async def join(
        self,
        name: str | None = None,
        cookie: str = "",
        viewer: str | None = None,
        address: str | None = None,
    ) -> Peer:
        """`address`: connect from another loopback address (127.0.0.2...), as a viewer
        on another network would."""
        cookies = [c for c in (cookie, f"vitrine_viewer={viewer}" if viewer else "") if c]
        headers = {"Cookie": "; ".join(cookies)} if cookies else {}
        extra = {"local_addr": (address, 0)} if address else {}
        ws = await websockets.connect(
            self.url, origin=self.server.url, additional_headers=headers, **extra
        )
        peer = Peer(ws)
        self.peers.append(peer)
        await peer.send(type="hello", v=1, name=name)
        await peer.wait("state")
        return peer

    async def close(self) -> None:
        for peer in self.peers:
            if peer.closed is None:
                await peer.close()


def staff_cookie(server: LiveServer, role: str = "moderator", show: int | None = None) -> str:
    """Sign in a new user with `role` (a moderator assigned to `show`); their cookie."""
    email = f"{role}@example.com"
    server.cli_input(
        ["create-admin", "--email", email, "--name", f"Team {role}", "--password-stdin"], PASSWORD
    )
    if role != "admin":
        with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
            conn.execute("UPDATE users SET role = ? WHERE email = ?", (role, email))
            if show is not None:
                conn.execute(
                    "INSERT INTO show_moderators (show_id, user_id) "
                    "SELECT ?, id FROM users WHERE email = ?",
                    (show, email),
                )
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server.url + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode(
        {"email": email, "password": PASSWORD, "csrf_token": token}
    ).encode()
    opener.open(server.url + "/login", data=body).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


@pytest.fixture
def show(live_server: LiveServer) -> int:
    live_server.cli("seed-demo")
    created = json.loads(
        live_server.cli(
            "shows", "create", "--title", "Room test", "--starts-at", "2030-01-01T10:00"
        )
    )
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(created["id"], 1, 0), (created["id"], 2, 1)],
        )
    return int(created["id"])


@pytest.fixture
async def room(live_server: LiveServer, show: int):
    r = Room(live_server, show)
    yield r
    await r.close()


async def test_join_chat_ordering_and_state(room: Room) -> None:
    ana = await room.join("Ana")
    welcome = ana.of("welcome")[0]
    assert welcome["v"] == 1 and welcome["name"] == "Ana" and welcome["staff"] is False
    state = ana.of("state")[0]
    assert state["show"] == {"id": room.show_id, "status": "scheduled"}
    assert (
        state["messages"] == []
        and state["product"] is None
        and state["chat"] == {"open": True, "slow_mode": 0}
    )
    others = [await room.join(f"Viewer {i}") for i in range(8)]
    for i in range(3):
        await ana.send(type="chat", text=f"message {i}")
        await asyncio.sleep(2.1 if i == 2 else 0)  # stay within the chat rate limit
    for peer in [ana, *others]:
        await peer.wait("chat", lambda m: m["text"] == "message 2")
        texts = [m["text"] for m in peer.of("chat")]
        assert texts == ["message 0", "message 1", "message 2"]
    late = await room.join("Late")
    assert [m["text"] for m in late.of("state")[0]["messages"]] == [
        "message 0",
        "message 1",
        "message 2",
    ]
    await ana.wait("viewers", lambda m: m["count"] == 10)


async def test_names(room: Room, live_server: LiveServer) -> None:
    staff_cookie(live_server, "moderator")  # a staff member called "Team moderator"
    ana = await room.join("Ana")
    rude = await room.join(None)
    await rude.send(type="chat", text="hello?")
    assert (await rude.wait("notice"))["code"] == "no_name"
    for bad, code in [
        ("ana", "name_taken"),
        ("A", "name_invalid"),
        ("x" * 30, "name_invalid"),
        ("Team Moderator", "name_invalid"),
        ("ADMIN", "name_invalid"),
        (42, "name_invalid"),
    ]:
        rude.messages.clear()
        await rude.send(type="set_name", name=bad)
        assert (await rude.wait("notice"))["code"] == code, bad
    await rude.send(type="set_name", name="Béa 🌸")
    assert (await rude.wait("named"))["name"] == "Béa 🌸"
    assert ana.of("welcome")[0]["name"] == "Ana"


async def test_hostile_text_is_kept_as_text_and_limits_hold(
    room: Room, live_server: LiveServer
) -> None:
    ana = await room.join("Ana")
    bob = await room.join("Bob")
    payload = (
        "<img src=x onerror=alert(1)> <script>alert('x')</script> '; DROP TABLE chat_messages; --"
    )
    await ana.send(type="chat", text=payload)
    got = await bob.wait("chat")
    assert got["text"] == payload  # stored and sent as text; pages render it with textContent
    await ana.send(type="chat", text="x" * 301)
    assert (await ana.wait("notice", lambda m: m["code"] == "too_long"))["text"]
    for frame in [
        "not json",
        "[1, 2]",
        '{"type": "nope"}',
        '{"no": "type"}',
        json.dumps({"type": "heart", "count": 1000}),
    ]:
        await ana.ws.send(frame)
    await ana.ws.send(b"\x00\x01 binary")
    await ana.ws.send(json.dumps({"type": "chat", "text": "y" * 5000}))
    await asyncio.sleep(0.3)
    assert len([m for m in ana.of("notice") if m["code"] == "bad_message"]) >= 6
    # The room survived: chat still flows.
    await asyncio.sleep(2.1)
    await ana.send(type="chat", text="still here")
    await bob.wait("chat", lambda m: m["text"] == "still here")
    # Rate limit: a burst of chat is cut with a notice, not a disconnect.
    for i in range(10):
        await bob.send(type="chat", text=f"spam {i}")
    await bob.wait("notice", lambda m: m["code"] == "rate_limited")
    await asyncio.sleep(0.5)
    assert len([m for m in ana.of("chat") if m["text"].startswith("spam")]) == 3
    assert bob.closed is None


async def test_hearts_are_aggregated(room: Room) -> None:
    watchers = [await room.join(f"W{i}") for i in range(5)]
    for w in watchers:
        for _ in range(4):
            await w.send(type="heart", count=2)
    await asyncio.sleep(0.8)
    total = sum(m["count"] for m in watchers[0].of("hearts"))
    assert total == 40
    assert len(watchers[0].of("hearts")) <= 4, "hearts go out as a few counts, not one by one"


async def test_chat_and_hearts_become_kpi_events(room: Room, live_server: LiveServer) -> None:
    ana = await room.join("Ana", viewer="v_kpi_viewer_ana_1")
    staff = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    # Staff are not viewers: no event. Said first, so an event for it would be buffered
    # before Ana's and written no later than hers: the assertion below would see it.
    await staff.send(type="chat", text="welcome")
    await ana.wait("chat", lambda m: m["text"] == "welcome")
    await ana.send(type="chat", text="hello")
    await ana.send(type="heart", count=3)
    await ana.wait("chat", lambda m: m["text"] == "hello")
    rows: list[tuple[str, str, str]] = []
    for _ in range(50):  # the event log writes once a second
        await asyncio.sleep(0.1)
        with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
            rows = conn.execute(
                "SELECT viewer, kind, props FROM events WHERE show_id = ? ORDER BY id",
                (room.show_id,),
            ).fetchall()
        if len(rows) >= 2:
            break
    assert rows == [
        ("v_kpi_viewer_ana_1", "chat", "{}"),
        ("v_kpi_viewer_ana_1", "like", '{"count":3}'),
    ]


async def test_staff_pin_product_offer_and_moderation(room: Room, live_server: LiveServer) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    assert mod.of("welcome")[0]["staff"] is True and mod.of("welcome")[0]["role"] == "moderator"
    # Each from its own address: a limited offer gives one code per viewer and per address.
    viewers = [
        await room.join(f"V{i}", viewer=f"v_viewer_number_{i:04d}", address=f"127.0.0.{i + 2}")
        for i in range(5)
    ]
    await mod.send(type="pin_product", product=2)
    cards = [await v.wait("product", lambda m: m["product"]) for v in viewers]
    card = cards[0]["product"]
    assert card["id"] == 2 and card["name"] == "Silk scarf" and card["price"] == "€75.00"
    assert (
        "utm_source=vitrine" in card["cart_url"]
        and f"utm_campaign=show-{room.show_id}" in card["cart_url"]
    )
    await mod.send(type="pin_product", product=4)  # not in this show's line-up
    assert (await mod.wait("notice"))["code"] == "not_found"
    await mod.send(type="unpin_product")
    await viewers[0].wait("product", lambda m: m["product"] is None)

    await mod.send(type="start_offer", code="LIVE10", minutes=5, quantity=2)
    offer = (await viewers[0].wait("offer", lambda m: m["offer"]))["offer"]
    assert offer["code"] is None and offer["remaining"] == 2 and offer["ends_at"] > time.time()
    for v in viewers[:3]:
        await v.send(type="claim_offer")
    assert (await viewers[0].wait("offer_code"))["code"] == "LIVE10"
    assert (await viewers[2].wait("notice"))["code"] == "offer_gone"
    await viewers[4].wait("offer", lambda m: m["offer"] and m["offer"]["remaining"] == 0)

    bad = viewers[1]
    await bad.send(type="chat", text="buy my stuff elsewhere", question=False)
    said = await mod.wait("chat", lambda m: m["text"].startswith("buy my"))
    await bad.send(type="chat", text="is it washable?", question=True)
    question = await mod.wait("chat", lambda m: m["question"])
    await mod.send(type="pin_message", id=question["id"])
    await viewers[0].wait(
        "pinned_message", lambda m: m["message"] and m["message"]["id"] == question["id"]
    )
    await mod.send(type="answer", id=question["id"])
    await viewers[0].wait("answered", lambda m: m["id"] == question["id"])
    await mod.send(type="delete", id=said["id"])
    await viewers[0].wait("deleted", lambda m: m["id"] == said["id"])
    await mod.send(type="mute", id=said["id"], minutes=5)
    await asyncio.sleep(2.1)
    await bad.send(type="chat", text="let me speak")
    assert await bad.wait("notice", lambda m: m["code"] == "muted")
    await mod.send(type="slow_mode", seconds=30)
    await viewers[0].wait("chat_state", lambda m: m["slow_mode"] == 30)
    await viewers[0].send(type="chat", text="first")
    await viewers[0].send(type="chat", text="second")
    assert await viewers[0].wait("notice", lambda m: m["code"] == "slow_mode")
    await mod.send(type="set_chat", open=False)
    await viewers[3].wait("chat_state", lambda m: m["open"] is False)
    await viewers[3].send(type="chat", text="hello")
    assert await viewers[3].wait("notice", lambda m: m["code"] == "chat_closed")
    await mod.send(type="chat", text="Staff can still talk")
    staff_line = await viewers[3].wait("chat", lambda m: m["text"] == "Staff can still talk")
    assert staff_line["staff"] is True and staff_line["name"] == "Team moderator"

    await mod.send(type="ban", id=said["id"])
    assert await bad.wait("notice", lambda m: m["code"] == "banned")
    await asyncio.sleep(0.3)
    assert bad.closed == 1008
    again = await websockets.connect(
        room.url,
        origin=live_server.url,
        additional_headers={"Cookie": "vitrine_viewer=v_viewer_number_0001"},
    )
    closed = Peer(again)
    with contextlib.suppress(ConnectionClosed):  # the server may close before this arrives
        await closed.send(type="hello", v=1, name="Sneaky")
    await asyncio.sleep(0.5)
    assert closed.closed == 1008

    await asyncio.sleep(1.5)  # let the batched writer flush
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM moderation_log ORDER BY id")]
        rows = {
            r[0]: r[1:]
            for r in conn.execute("SELECT id, deleted, answered, question FROM chat_messages")
        }
        pins = conn.execute("SELECT product_id, unpinned_at IS NOT NULL FROM show_pins").fetchall()
    assert actions[:4] == ["pin_product", "unpin_product", "start_offer", "pin_message"]
    assert {"answer", "delete", "mute", "slow_mode", "close_chat", "ban"} <= set(actions)
    assert rows[said["id"]][0] == 1 and rows[question["id"]][1:] == (1, 1)
    assert pins == [(2, 1)]


async def test_viewers_cannot_moderate(room: Room) -> None:
    ana = await room.join("Ana")
    bob = await room.join("Bob")
    await bob.send(type="chat", text="hi")
    said = await ana.wait("chat")
    for message in [
        {"type": "delete", "id": said["id"]},
        {"type": "pin_product", "product": 1},
        {"type": "ban", "id": said["id"]},
        {"type": "set_chat", "open": False},
    ]:
        ana.messages.clear()
        await ana.send(**message)
        assert (await ana.wait("notice"))["code"] == "not_allowed"
    assert bob.closed is None and not bob.of("deleted")


async def test_handshake_checks(live_server: LiveServer, show: int) -> None:
    url = live_server.url.replace("http://", "ws://") + f"/ws/shows/{show}"
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url, origin="https://evil.example")
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url)  # no Origin at all
    assert info.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as info:
        await websockets.connect(url.replace(f"/{show}", "/4242"), origin=live_server.url)
    assert info.value.response.status_code == 404
    # The client offers permessage-deflate; the server declines it.
    ws = await websockets.connect(url, origin=live_server.url, compression="deflate")
    assert "Sec-WebSocket-Extensions" not in ws.response.headers
    await ws.close()


async def test_show_status_reaches_the_room(room: Room, live_server: LiveServer) -> None:
    peer = await room.join("Ana")
    cookie = staff_cookie(live_server, "admin")
    token_page = urllib.request.Request(live_server.url + "/admin", headers={"Cookie": cookie})
    page = await asyncio.to_thread(lambda: urllib.request.urlopen(token_page).read().decode())
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    end = urllib.request.Request(
        f"{live_server.url}/studio/{room.show_id}/end",
        data=b"",
        method="POST",
        headers={"Cookie": cookie, "X-CSRF-Token": csrf},
    )
    assert (await asyncio.to_thread(urllib.request.urlopen, end)).status == 204
    assert (await peer.wait("status"))["status"] == "ended"


async def test_a_slow_client_is_dropped_and_the_others_go_on() -> None:
    """The policy itself, on real Room and Client objects with queued outlets (the path
    for servers that do not expose their transport): a client that does not take its
    frames is disconnected once its queue is full; the broadcast never waits."""
    from babel.support import NullTranslations

    from appliance.room.hub import CLOSE_SLOW, Client
    from appliance.room.hub import Room as LiveRoom
    from appliance.room.wire import QUEUE_FRAMES, QueuedOutlet

    live = LiveRoom(1, "live", time.time())
    slow = Client(viewer="v_slow_client_0000", address="a", tr=NullTranslations(), said_hello=True)
    fast = Client(viewer="v_fast_client_0000", address="b", tr=NullTranslations(), said_hello=True)
    assert isinstance(slow.outlet, QueuedOutlet) and isinstance(fast.outlet, QueuedOutlet)
    live.clients |= {slow, fast}
    received = []
    for i in range(QUEUE_FRAMES + 10):
        live.broadcast({"type": "chat", "id": i})
        now = time.monotonic() + i
        slow.heard = fast.heard = now  # both still send pings: only slowness is at stake
        live.tick(now)
        while not fast.outlet.queue.empty():  # the fast client keeps up
            received.append(fast.outlet.queue.get_nowait())
    assert slow.close_code == CLOSE_SLOW
    # only the close is left
    assert slow.outlet.queue.qsize() == 1 and slow.outlet.queue.get_nowait() is None
    assert fast.close_code is None
    assert sum(len(json.loads(f)) for f in received if f) >= QUEUE_FRAMES + 10


def test_frames_of_a_client_that_fell_behind_merge_in_order() -> None:
    from appliance.room.wire import merge_frames

    frames = ['[{"id":1}]', "[]", '[{"id":2},{"id":3}]', '[{"id":4}]']
    assert json.loads(merge_frames(frames)) == [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}]
    assert json.loads(merge_frames(["[]", "[]"])) == []


def test_a_silent_client_is_closed_by_the_tick() -> None:
    from babel.support import NullTranslations

    from appliance.room.hub import IDLE_SECONDS, Client
    from appliance.room.hub import Room as LiveRoom

    room = LiveRoom(1, "live", None)
    talker = Client(viewer="v_talker_000000000", address="a", tr=NullTranslations())
    silent = Client(viewer="v_silent_000000000", address="b", tr=NullTranslations())
    room.clients.update({talker, silent})
    now = silent.heard + IDLE_SECONDS + 1
    talker.heard = now - 5
    room.tick(now)
    assert silent.close_code == 1001 and talker.close_code is None
