"""Chapters and chat replay from a real show: a publisher over WHIP sends numbered frames
to the real server, a moderator pins products and a viewer chats over the room
websocket; after the show, the replay's chapters and chat fall where the frames say they
happened (within a second)."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import av
import pytest

from tests.conftest import LiveServer
from tests.media_helpers import CounterVideoTrack, read_counter
from tests.test_media_http import Show, ahttp, publish, replay_status, until
from tests.test_room import Room, staff_cookie

FPS = 15


pytestmark = pytest.mark.usefixtures("loopback_candidates")


def counter_at(path: str, t: float) -> int:
    """The number on the replay's frame shown at `t` seconds."""
    with av.open(path) as src:
        stream = src.streams.video[0]
        last = None
        for frame in src.decode(stream):
            if frame.time > t + 1e-3:
                break
            last = frame
        assert last is not None
        return read_counter(last)


async def test_pins_and_chat_land_where_they_happened(live_server: LiveServer) -> None:
    live_server.cli("seed-demo")
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Chapters", "--starts-at", "2030-01-01T10:00")
    )
    show = Show(live_server, created["id"], created["stream_key"])
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show.id, 1, 0), (show.id, 2, 1)],
        )
    track = CounterVideoTrack(320, 180, FPS)
    pc, _ = await publish(show, track)
    room = Room(live_server, show.id)
    try:
        await until(lambda: show.status()["publishing"])
        moderator = await room.join(
            cookie=await asyncio.to_thread(staff_cookie, live_server, "moderator", show.id)
        )
        viewer = await room.join("Ana")
        await asyncio.sleep(2.0)
        pinned = {}
        for product in (1, 2):
            pinned[product] = track.count
            await moderator.send(type="pin_product", product=product)
            await viewer.wait("product", lambda m, p=product: (m["product"] or {}).get("id") == p)
            await asyncio.sleep(2.0)
        said = track.count
        await viewer.send(type="chat", text="Does it come in blue?")
        await viewer.wait("chat", lambda m: m["text"] == "Does it come in blue?")
        await asyncio.sleep(1.5)
    finally:
        await room.close()
        await pc.close()
    # The publisher is gone: the show ends after the grace period, and its replay is made.
    await until(lambda: show.status()["status"] == "ended", 20)
    await until(lambda: replay_status(show) == "ready", 30)
    video = str(live_server.data_dir / "replays" / f"show-{show.id}.mp4")
    first = await asyncio.to_thread(counter_at, video, 0.0)  # recording began on a keyframe

    def replay_time(counter: int) -> float:
        return (counter - first) / FPS

    reply = await ahttp("GET", f"{live_server.url}/api/replays/{show.id}/chapters")
    chapters = json.loads(reply.body)["chapters"]
    assert [c["product"] for c in chapters] == [1, 2]
    for chapter in chapters:
        expected = replay_time(pinned[chapter["product"]])
        assert chapter["t"] == pytest.approx(expected, abs=1.0), (chapter, expected)
        # And the frame at the chapter's time is the one sent when the pin was made.
        shown = await asyncio.to_thread(counter_at, video, chapter["t"])
        assert abs(shown - pinned[chapter["product"]]) <= FPS, (shown, pinned)
    assert chapters[0]["end"] == pytest.approx(chapters[1]["t"], abs=0.01)

    at = replay_time(said)
    window = f"from={max(0.0, at - 5):.2f}&to={at + 5:.2f}"
    reply = await ahttp("GET", f"{live_server.url}/api/replays/{show.id}/chat?{window}")
    messages = json.loads(reply.body)["messages"]
    assert [m["text"] for m in messages] == ["Does it come in blue?"]
    assert messages[0]["t"] == pytest.approx(at, abs=1.0)
    # A window before it does not hold it.
    reply = await ahttp("GET", f"{live_server.url}/api/replays/{show.id}/chat?from=0&to=1")
    assert json.loads(reply.body)["messages"] == []
