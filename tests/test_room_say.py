"""Viewers on no socket send to the live room with POSTs (appliance/views/api/say.py) and
read the feed, against the real server with real websockets: what they say reaches the
sockets and the feed like a socket's chat, and the reverse, in order, none lost nor seen
twice when a viewer moves between socket and feed; bans, rate limits and bad bodies."""

from __future__ import annotations

import asyncio
import http.client
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.test_room import Room, staff_cookie
from tests.test_room_feed import aget


class Poster:
    """A viewer without a socket: POSTs to /api/rooms/<show>/say, from `address`."""

    def __init__(self, server: LiveServer, show: int, viewer: str, address: str = "127.0.0.1"):
        self.server = server
        self.show = show
        self.viewer = viewer
        self.address = address
        self.got: list[dict[str, Any]] = []  # the private messages of every answer

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        url = urlsplit(self.server.url)
        conn = http.client.HTTPConnection(
            url.hostname or "", url.port, timeout=30, source_address=(self.address, 0)
        )
        try:
            conn.request("POST", f"/api/rooms/{self.show}/say", body=body, headers=headers)
            r = conn.getresponse()
            return r.status, json.loads(r.read())
        finally:
            conn.close()

    async def raw(
        self, body: bytes, content_type: str = "application/json", origin: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "Origin": self.server.url if origin is None else origin,
            "Content-Type": content_type,
            "Cookie": f"vitrine_viewer={self.viewer}",
        }
        if not origin and origin is not None:
            del headers["Origin"]
        return await asyncio.to_thread(self._post, body, headers)

    async def say(self, **message: Any) -> tuple[int, dict[str, Any]]:
        status, answer = await self.raw(json.dumps(message).encode())
        self.got += answer.get("messages", [])
        return status, answer


@pytest.fixture
def show(live_server: LiveServer) -> int:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Say", "--starts-at", "2030-01-01T10:00")
    )
    return int(created["id"])


@pytest.fixture
async def room(live_server: LiveServer, show: int) -> AsyncIterator[Room]:
    r = Room(live_server, show)
    yield r
    await r.close()


def chats(frames: list[list[dict[str, Any]]]) -> list[str]:
    return [m["text"] for frame in frames for m in frame if m["type"] == "chat"]


def numbers(frames: list[list[dict[str, Any]]]) -> list[int]:
    return [m["seq"] for frame in frames for m in frame if m["type"] == "seq"]


async def read_feed(server: LiveServer, show: int, after: int, want: int) -> tuple[list, int]:
    """Frames after `after` until `want` chat messages came; and the last number."""
    feed = f"{server.url}/rooms/{show}/feed"
    frames: list[list[dict[str, Any]]] = []
    for _ in range(20):
        status, got, _, _ = await aget(f"{feed}?after={after}")
        assert status == 200 and not got.get("reset"), got
        frames += got["frames"]
        after = got["seq"]
        if len(chats(frames)) >= want:
            break
    return frames, after


async def test_feed_and_socket_viewers_see_each_other_in_order(
    live_server: LiveServer, show: int, room: Room
) -> None:
    ana = await room.join("Ana")
    bea = Poster(live_server, show, "v_bea_feed_viewer_0001")
    status, answer = await bea.say(type="hello", v=1, name="Bea")
    assert status == 200, answer
    kinds = [m["type"] for m in answer["messages"]]
    assert kinds[:2] == ["welcome", "state"]
    welcome, state = answer["messages"][:2]
    assert welcome["name"] == "Bea" and welcome["viewer"] == bea.viewer
    after = state["seq"]
    # Bea counts as a viewer, as a socket would.
    await ana.wait("viewers", lambda m: m["count"] == 2)

    # Bea's chat reaches Ana's socket and the feed; Ana's reaches the feed; in order.
    assert (await bea.say(type="chat", text="from the feed 1"))[0] == 200
    await ana.send(type="chat", text="from the socket 1")
    await ana.wait("chat", lambda m: m["text"] == "from the socket 1")
    assert (await bea.say(type="chat", text="from the feed 2"))[0] == 200
    await ana.send(type="chat", text="from the socket 2")
    expected = ["from the feed 1", "from the socket 1", "from the feed 2", "from the socket 2"]
    await ana.wait("chat", lambda m: m["text"] == "from the socket 2")
    assert [m["text"] for m in ana.of("chat")] == expected
    frames, last = await read_feed(live_server, show, after, 4)
    assert chats(frames) == expected
    # The feed's frames carry the numbers the sockets' frames carry, consecutive.
    seen = numbers(frames)
    assert seen == list(range(after + 1, last + 1))
    socket_numbers = [m["seq"] for m in ana.of("seq")]
    assert set(seen) <= set(socket_numbers)

    # A heart sent by POST is counted with the socket's.
    assert (await bea.say(type="heart", count=3))[0] == 200
    await ana.wait("hearts", lambda m: m["count"] == 3)

    # Ana moves to the feed: from the last number her socket saw, the feed gives exactly
    # what came after, nothing twice, nothing lost, while Bea goes on.
    ana_last = max(m["seq"] for m in ana.of("seq"))
    await ana.close()
    assert (await bea.say(type="chat", text="while Ana moves"))[0] == 200
    frames, last = await read_feed(live_server, show, ana_last, 1)
    assert chats(frames) == ["while Ana moves"]
    assert numbers(frames) == list(range(ana_last + 1, last + 1))

    # Ana comes back on a socket: its state says which frame it includes, and the frames
    # after it follow that number (the page skips what it saw on the feed).
    back = await room.join("Ana")
    state = back.of("state")[0]
    assert "while Ana moves" in [m["text"] for m in state["messages"]]
    assert state["seq"] >= last
    await asyncio.sleep(2.1)  # the chat's bucket: three in a burst, then one per 2 s
    assert (await bea.say(type="chat", text="welcome back")) == (200, {"messages": []})
    message = await back.wait("chat", lambda m: m["text"] == "welcome back")
    assert message["name"] == "Bea"
    assert min(m["seq"] for m in back.of("seq")) > state["seq"]

    # Private answers: a ping is answered with a pong in the POST's answer.
    status, answer = await bea.say(type="ping")
    assert status == 200 and {"type": "pong"} in answer["messages"]
    # Bea's name is hers only: Ana's socket cannot take it, Bea's own re-hello can.
    status, answer = await bea.say(type="hello", v=1, name="Bea")
    assert answer["messages"][0] == {**welcome, "name": "Bea"}
    await back.send(type="set_name", name="bea")
    assert (await back.wait("notice"))["code"] == "name_taken"


async def test_rules_of_the_room_hold_for_posts(
    live_server: LiveServer, show: int, room: Room
) -> None:
    mod = await room.join(None, cookie=staff_cookie(live_server, "admin"))
    bob = Poster(live_server, show, "v_bob_feed_viewer_0001")
    # Before hello: a 409, and staff actions are not for POSTs.
    assert (await bob.say(type="chat", text="hi"))[0] == 409
    assert (await bob.say(type="hello", v=1, name="Bob"))[0] == 200
    # The chat's own bucket, as on a socket: a burst past 3 is refused with a notice.
    codes = []
    for i in range(5):
        status, answer = await bob.say(type="chat", text=f"burst {i}")
        codes += [m["code"] for m in answer["messages"] if m["type"] == "notice"]
    assert codes == ["rate_limited"]  # one notice a second at most
    await mod.wait("chat", lambda m: m["text"] == "burst 2")
    await asyncio.sleep(0.3)
    assert [m["text"] for m in mod.of("chat")] == ["burst 0", "burst 1", "burst 2"]
    status, answer = await bob.say(type="slow_mode", seconds=30)
    assert status == 200 and answer["messages"][0]["code"] == "not_allowed"
    # Slow mode applies to him.
    await mod.send(type="slow_mode", seconds=30)
    await mod.wait("chat_state", lambda m: m["slow_mode"] == 30)
    await asyncio.sleep(2.1)  # the bucket has a token again: slow mode is what refuses
    status, answer = await bob.say(type="chat", text="slow one")
    assert [m["code"] for m in answer["messages"]] == ["slow_mode"]
    await mod.send(type="slow_mode", seconds=0)
    # A ban made from a socket applies to his POSTs, now and after a new hello.
    rude = await mod.wait("chat", lambda m: m["text"] == "burst 0")
    await mod.send(type="ban", id=rude["id"])
    await mod.wait("sanctions", lambda m: m["sanctions"])
    status, answer = await bob.say(type="chat", text="still here?")
    assert status == 403
    assert [m["code"] for m in answer["messages"]] == ["banned"]
    status, answer = await bob.say(type="hello", v=1, name="Bob")
    assert status == 403 and answer["messages"][0]["code"] == "banned"
    assert "still here?" not in [m["text"] for m in mod.of("chat")]


async def test_bad_requests_are_clear_4xx(live_server: LiveServer, show: int) -> None:
    cara = Poster(live_server, show, "v_cara_feed_viewer_01")
    assert (await cara.raw(b"{not json"))[0] == 400
    assert (await cara.raw(b"[1, 2]"))[0] == 400
    assert (await cara.raw(b'{"type": "nonsense"}'))[0] == 400
    assert (await cara.raw(b'{"type": "hello"}', content_type="text/plain"))[0] == 415
    assert (await cara.raw(b'{"type": "hello"}', origin="https://evil.example"))[0] == 403
    assert (await cara.raw(b'{"type": "hello"}', origin=""))[0] == 403
    assert (await cara.raw(json.dumps({"type": "chat", "text": "x" * 5000}).encode()))[0] == 413
    assert (await Poster(live_server, 999_999, cara.viewer).say(type="hello"))[0] == 404
    status, answer = await Poster(live_server, show, "bad cookie!").say(type="hello")
    assert status == 400 and "cookie" in answer["error"]
    status, answer = await cara.say(type="hello", v=1, name="Cara")
    assert status == 200
    status, answer = await cara.say(type="chat", text="  ")
    assert status == 200 and answer["messages"][0]["code"] == "bad_message"


@pytest.fixture
def capped(tmp_path: Any) -> Any:
    """A server where one address may hold 2 connections of a room."""
    server = launch(
        tmp_path / "capped-data",
        tmp_path / "capped.log",
        {"VITRINE_LIMITS_ROOM_SOCKETS_PER_ADDRESS": "2"},
    )
    yield server
    stop(server)


async def test_rate_limits_per_viewer_and_per_address(capped: LiveServer) -> None:
    created = json.loads(
        capped.cli("shows", "create", "--title", "Busy", "--starts-at", "2030-01-01T10:00")
    )
    show = int(created["id"])
    # Per viewer: 60 requests in 10 s, then 429.
    dan = Poster(capped, show, "v_dan_feed_viewer_0001")
    statuses = [(await dan.say(type="ping"))[0] for _ in range(61)]
    assert statuses[0] == 409 and statuses[59] == 409 and statuses[60] == 429
    # Another address is not held back by Dan.
    eve = Poster(capped, show, "v_eve_feed_viewer_0001", address="127.0.0.2")
    assert (await eve.say(type="hello", v=1, name="Eve"))[0] == 200
    # Per address: this one may send for its 2 viewers (120 in 10 s); Fay, under her own
    # limit, is refused once Dan and Gus used up the address's share.
    gus = Poster(capped, show, "v_gus_feed_viewer_0001")
    for _ in range(60):
        assert (await gus.say(type="ping"))[0] == 409
    fay = Poster(capped, show, "v_fay_feed_viewer_0001")
    status, answer = await fay.say(type="hello", v=1, name="Fay")
    assert status == 429 and "address" in answer["error"], answer
    # Past the polled viewers an address may have (4 times its 2 sockets), one is told so.
    assert (await eve.say(type="ping"))[0] == 200
    for i in range(8):
        other = Poster(capped, show, f"v_other_feed_viewer_{i:02}", address="127.0.0.2")
        status, answer = await other.say(type="hello", v=1, name=f"Other {i}")
        assert status == (200 if i < 7 else 429), answer
    assert answer["messages"][0]["code"] == "too_many_connections"


async def test_votes_entries_and_a_prize_over_posts(
    live_server: LiveServer, show: int, room: Room
) -> None:
    """Polls and giveaways work for a viewer on the feed: its vote counts, its entry is
    answered, and when it is drawn its prize_won waits for its next request."""
    mod = await room.join(None, cookie=staff_cookie(live_server, "admin"))
    kim = Poster(live_server, show, "v_kim_feed_viewer_0001")
    assert (await kim.say(type="hello", v=1, name="Kim"))[0] == 200
    await mod.send(type="start_poll", question="Colour?", options=["Red", "Blue"], seconds=60)
    await mod.wait("poll")
    assert (await kim.say(type="vote", option=1)) == (200, {"messages": []})
    await mod.wait("poll", lambda m: m["counts"] == [0, 1], limit=5)
    status, answer = await kim.say(type="vote", option=0)
    assert [m["code"] for m in answer["messages"]] == ["already_voted"]

    await mod.send(type="start_giveaway", prize="Silk scarf")
    await mod.wait("giveaway")
    status, answer = await kim.say(type="enter")
    assert status == 200 and [m["type"] for m in answer["messages"]] == ["entered"]
    await mod.send(type="draw")
    drawn = await mod.wait("giveaway", lambda m: m["winner"] is not None)
    assert drawn["winner"]["name"] == "Kim"
    status, answer = await kim.say(type="ping")
    won = [m for m in answer["messages"] if m["type"] == "prize_won"]
    assert won and won[0]["prize"] == "Silk scarf"
    status, answer = await kim.say(type="claim_prize", email="kim@example.com")
    assert [m["type"] for m in answer["messages"]] == ["prize_claimed"]
