"""The live room as a cacheable HTTP feed (appliance/views/api/feed.py) against the real
server: a reader without a socket gets the state, then every broadcast frame in order with
long polls, none lost when it asks again from the last number it saw, the same bytes for
every reader."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.conftest import LiveServer
from tests.test_room import Room


def get(url: str) -> tuple[int, dict[str, Any], Any, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            return r.status, json.loads(body), r.headers, body
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, json.loads(body), exc.headers, body


async def aget(url: str) -> tuple[int, dict[str, Any], Any, bytes]:
    return await asyncio.to_thread(get, url)


@pytest.fixture
def show(live_server: LiveServer) -> int:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Feed", "--starts-at", "2030-01-01T10:00")
    )
    return int(created["id"])


def chats(frames: list[list[dict[str, Any]]]) -> list[str]:
    return [m["text"] for frame in frames for m in frame if m["type"] == "chat"]


async def test_a_feed_reader_sees_the_sockets_chat_in_order(
    live_server: LiveServer, show: int
) -> None:
    feed = f"{live_server.url}/rooms/{show}/feed"
    status, first, headers, _ = await aget(feed)
    assert status == 200 and first["state"]["show"]["id"] == show
    assert headers["Cache-Control"] == "public, max-age=1"
    assert "Cookie" not in headers.get("Vary", "")
    seq = first["seq"]

    room = Room(live_server, show)
    try:
        ana = await room.join("Ana")
        await asyncio.sleep(2.5)  # the viewer count's frame has gone by
        seq = (await aget(feed))[1]["seq"]  # past the viewer count's frame
        first_seq = seq
        # A long poll held until the next frame, then the socket's chat, in order.
        waiting = asyncio.ensure_future(aget(f"{feed}?after={seq}"))
        await asyncio.sleep(0.5)
        assert not waiting.done()
        seen: list[str] = []
        for i in range(3):
            await ana.send(type="chat", text=f"message {i}")
            await asyncio.sleep(2.1 if i == 2 else 0)  # the chat rate limit
        status, got, _, _body = await waiting
        assert status == 200
        frames = got["frames"]
        seq = got["seq"]
        seen += chats(frames)
        # Asking again from the last number seen ("a reconnect"): nothing lost, nothing twice.
        while len(seen) < 3:
            status, got, _, _ = await aget(f"{feed}?after={seq}")
            seen += chats(got["frames"])
            seq = got["seq"]
        assert seen == ["message 0", "message 1", "message 2"]
        # Another reader asking from the same number gets the same frames (cacheable).
        _, _, _, again = await aget(f"{feed}?after={first_seq}")
        assert json.loads(again)["frames"][: len(frames)] == frames
        await ana.wait("chat", lambda m: m["text"] == "message 2")
    finally:
        await room.close()

    assert (await aget(f"{feed}?after=x"))[0] == 400
    assert (await aget(f"{feed}?after=999999"))[1]["reset"] is True
    assert (await aget(f"{live_server.url}/rooms/999999/feed"))[0] == 404
