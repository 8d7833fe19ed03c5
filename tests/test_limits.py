"""One client cannot starve the rest: per-address caps on WHEP sessions and room sockets,
sessions that never connect take no viewer's place and expire, and the viewer count counts
viewers. Against the real server, with real aiortc peers and real websockets; client
addresses come from X-Forwarded-For, believed from the test's loopback (a trusted proxy)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiortc import RTCPeerConnection
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, make_viewer
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_media_http import Reply, Show, ahttp, frames, until

pytestmark = pytest.mark.usefixtures("loopback_candidates")

MAX_VIEWERS = 5
WHEP_PER_ADDRESS = 8
ROOM_PER_ADDRESS = 4
ICE_SECONDS = 2
ATTACKER = "203.0.113.66"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    running = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {
            "VITRINE_SERVER_PROXY_HEADERS": "true",
            "VITRINE_MEDIA_MAX_VIEWERS": str(MAX_VIEWERS),
            "VITRINE_LIMITS_WHEP_SESSIONS_PER_ADDRESS": str(WHEP_PER_ADDRESS),
            "VITRINE_LIMITS_ROOM_SOCKETS_PER_ADDRESS": str(ROOM_PER_ADDRESS),
            "VITRINE_MEDIA_ICE_CONNECT_SECONDS": str(ICE_SECONDS),
        },
    )
    yield running
    stop(running)


@pytest.fixture
def show(server: LiveServer) -> Show:
    created = json.loads(
        server.cli("shows", "create", "--title", "Limits", "--starts-at", "2030-01-01T10:00")
    )
    return Show(server, created["id"], created["stream_key"])


@pytest.fixture
async def peers() -> AsyncIterator[list[RTCPeerConnection]]:
    pcs: list[RTCPeerConnection] = []
    yield pcs
    for pc in pcs:
        await pc.close()


async def whep(show: Show, offer: str, address: str) -> Reply:
    headers = {"Content-Type": "application/sdp", "X-Forwarded-For": address}
    return await ahttp("POST", show.whep, offer.encode(), headers)


async def go_live(show: Show, peers: list[RTCPeerConnection]) -> None:
    pc, offer = await make_publisher(CounterVideoTrack(320, 180, 15))
    peers.append(pc)
    headers = {"Content-Type": "application/sdp", "Authorization": f"Bearer {show.key}"}
    reply = await ahttp("POST", show.whip, offer.encode(), headers)
    assert reply.status == 201, reply.body
    await answer(pc, reply.body)
    await until(lambda: show.status()["publishing"])


async def test_sessions_that_never_connect_do_not_keep_real_viewers_out(
    show: Show, peers: list[RTCPeerConnection]
) -> None:
    await go_live(show, peers)
    # One client posts 60 offers and never finishes ICE (the answers are thrown away).
    bot, bot_offer, _ = await make_viewer()
    peers.append(bot)
    replies = [await whep(show, bot_offer, ATTACKER) for _ in range(60)]
    assert [r.status for r in replies].count(201) == WHEP_PER_ADDRESS  # more than MAX_VIEWERS
    refused = [r for r in replies if r.status != 201]
    assert {r.status for r in refused} == {429}
    assert all(r.headers["Retry-After"] == str(ICE_SECONDS) for r in refused)
    assert "too many video sessions" in refused[0].body
    assert refused[0].headers["Content-Type"].startswith("text/plain")

    # A real viewer (another address) still gets in, and plays.
    viewer, offer, tracks = await make_viewer()
    peers.append(viewer)
    reply = await whep(show, offer, "198.51.100.1")
    assert reply.status == 201, reply.body
    await answer(viewer, reply.body)
    assert len(await frames(tracks, 10)) == 10
    # Only the connected viewer is counted, as capacity and as the viewer count.
    await until(lambda: show.status()["viewers"] == 1)

    # The ones that never connected are closed after media.ice_connect_seconds.
    await asyncio.sleep(ICE_SECONDS + 2)
    for r in replies[:WHEP_PER_ADDRESS]:
        gone = await ahttp("DELETE", show.server.url + r.headers["Location"])
        assert gone.status == 404, "an unconnected session outlived its deadline"
    assert (await whep(show, bot_offer, ATTACKER)).status == 201  # its share is free again
    assert show.status()["viewers"] == 1
    assert (await ahttp("DELETE", show.server.url + reply.headers["Location"])).status == 200


async def test_connected_viewers_fill_the_show_and_no_more(
    show: Show, peers: list[RTCPeerConnection]
) -> None:
    await go_live(show, peers)
    for i in range(MAX_VIEWERS):
        pc, offer, _ = await make_viewer()
        peers.append(pc)
        reply = await whep(show, offer, f"198.51.100.{i + 1}")
        assert reply.status == 201, reply.body
        await answer(pc, reply.body)
    await until(lambda: show.status()["viewers"] == MAX_VIEWERS)
    pc, offer, _ = await make_viewer()
    peers.append(pc)
    full = await whep(show, offer, "198.51.100.99")
    assert full.status == 503 and full.headers["Retry-After"] == "30"


class Socket:
    """A room websocket that keeps every message the server sends."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._collect())

    async def _collect(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                self.messages.extend(json.loads(await self.ws.recv()))

    def latest(self, kind: str) -> dict[str, Any] | None:
        found = [m for m in self.messages if m["type"] == kind]
        return found[-1] if found else None

    async def close(self) -> None:
        await self.ws.close()
        await self.task


async def connect(show: Show, address: str | None = None, viewer: str | None = None) -> Socket:
    url = show.server.url.replace("http://", "ws://") + f"/ws/shows/{show.id}"
    headers = {}
    if address is not None:
        headers["X-Forwarded-For"] = address
    if viewer is not None:
        headers["Cookie"] = f"vitrine_viewer={viewer}"
    ws = await websockets.connect(url, origin=show.server.url, additional_headers=headers)  # type: ignore[arg-type]
    socket = Socket(ws)
    await ws.send(json.dumps({"type": "hello", "v": 1}))
    return socket


async def test_room_sockets_are_capped_per_address(show: Show) -> None:
    sockets = [await connect(show, ATTACKER) for _ in range(ROOM_PER_ADDRESS)]
    with pytest.raises(InvalidStatus) as refused:
        await connect(show, ATTACKER)
    assert refused.value.response.status_code == 429
    # A burst (all upgrading at once) is counted as it arrives: all refused.
    burst = await asyncio.gather(
        *(connect(show, ATTACKER) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, InvalidStatus) for r in burst), burst
    # Other addresses are not held back, and a closed socket frees its place.
    other = await connect(show, "198.51.100.7")
    await sockets.pop().close()
    again = await until_connected(show, ATTACKER)
    for s in [*sockets, other, again]:
        await s.close()


async def until_connected(show: Show, address: str) -> Socket:
    deadline = time.monotonic() + 5
    while True:
        try:
            return await connect(show, address)
        except InvalidStatus:
            assert time.monotonic() < deadline, "the closed socket's place was not freed"
            await asyncio.sleep(0.1)


async def test_the_viewer_count_counts_viewers_not_sockets(show: Show) -> None:
    first_tab = await connect(show, "198.51.100.1", viewer="v_same_viewer_0123456789")
    second_tab = await connect(show, "198.51.100.1", viewer="v_same_viewer_0123456789")
    other = await connect(show, "198.51.100.2", viewer="v_other_viewer_012345678")

    def counted() -> int | None:
        message = first_tab.latest("viewers")
        return None if message is None else int(message["count"])

    await until(lambda: counted() == 2 and len(other.messages) > 0)
    await asyncio.sleep(1.5)  # the count goes out each second while it changes
    assert counted() == 2
    state = other.latest("state")
    assert state is not None and state["viewers"] == 2
    await second_tab.close()  # one tab closed: still the same viewer, still two viewers
    await asyncio.sleep(1.5)
    assert counted() == 2
    await other.close()
    await until(lambda: counted() == 1)
    await first_tab.close()


RECORD_COUNTS = """
window.countsWhilePlaying = [];
document.addEventListener("DOMContentLoaded", () => {
  const counter = document.getElementById("stage-viewers");
  new MutationObserver(() => {
    if (document.body.dataset.playerState === "playing" && counter.textContent) {
      window.countsWhilePlaying.push(counter.textContent);
    }
  }).observe(counter, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
async def test_the_show_page_counts_its_own_viewer_once_playing(
    live_server: LiveServer, peers: list[RTCPeerConnection]
) -> None:
    """The player showed '0 watching' for its first seconds: the count it had was taken
    before its own session was up, and the next poll was 5 s away."""
    from playwright.async_api import async_playwright

    created = json.loads(
        live_server.cli("shows", "create", "--title", "Counted", "--starts-at", "2030-01-01T10:00")
    )
    show = Show(live_server, created["id"], created["stream_key"])
    await go_live(show, peers)
    await until(lambda: show.status()["status"] == "live")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, bypass_csp=True
            )
            page = await context.new_page()
            await page.add_init_script(RECORD_COUNTS)
            await page.goto(f"{live_server.url}/shows/{show.id}")
            await page.wait_for_function(
                "document.body.dataset.playerState === 'playing'", timeout=20000
            )
            await page.wait_for_function(
                "document.getElementById('stage-viewers').textContent === '1 watching'",
                timeout=2500,
            )
            seen = await page.evaluate("window.countsWhilePlaying")
            assert "0 watching" not in seen, seen
        finally:
            await browser.close()


@pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
async def test_a_waiting_viewer_plays_as_soon_as_the_room_says_live(
    live_server: LiveServer, peers: list[RTCPeerConnection]
) -> None:
    """Viewers waiting on the page learnt that the show started from a status poll every
    3 s, so the studio showed '0 watching' for its first seconds. Here the polls made
    before the show starts are held for 10 s: only the room's status message can start
    the player in time."""
    from playwright.async_api import Route, async_playwright

    created = json.loads(
        live_server.cli("shows", "create", "--title", "Waiting", "--starts-at", "2030-01-01T10:00")
    )
    show = Show(live_server, created["id"], created["stream_key"])
    on_air = asyncio.Event()

    async def hold_early_polls(route: Route) -> None:
        if not on_air.is_set():
            await asyncio.sleep(10)
        with contextlib.suppress(Exception):  # the page may be gone by then
            await route.continue_()

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = await browser.new_context(
                viewport={"width": 390, "height": 844}, bypass_csp=True
            )
            page = await context.new_page()
            await page.route(f"**/api/shows/{show.id}/status", hold_early_polls)
            await page.goto(f"{live_server.url}/shows/{show.id}")
            await page.wait_for_function("document.querySelector('#chat-viewers').textContent")
            assert await page.evaluate("document.body.dataset.playerState") == "waiting"
            on_air.set()
            await go_live(show, peers)
            await page.wait_for_function(
                "document.body.dataset.playerState !== 'waiting'", timeout=5000
            )
            await until(lambda: show.status()["viewers"] == 1)
        finally:
            await browser.close()


async def test_without_an_http_answer_the_extra_socket_is_told_why(tmp_path: Path) -> None:
    """Under a server that cannot answer the upgrade over HTTP, the socket past the cap is
    accepted, told in a notice, and closed with the policy code."""
    from appliance.app import create_app
    from appliance.catalog import shows
    from appliance.config import load_config

    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "limits.room_sockets_per_address": "1",
        },
    )
    app = create_app(config)
    async with app.test_app():
        svc = app.extensions["vitrine"]
        show_id = await shows.create_show(
            svc.db, shows.ShowData("Crowded", "", 2_000_000_000, 60, None)
        )

        def scope() -> dict[str, Any]:
            return {
                "type": "websocket",
                "path": f"/ws/shows/{show_id}",
                "headers": [(b"origin", config.base_url.encode()), (b"host", b"127.0.0.1")],
                "client": ("198.51.100.4", 5000),
                "http_version": "1.1",
                "extensions": {},  # no websocket.http.response
            }

        async def session(inbox: asyncio.Queue[dict[str, Any]], sent: list[dict[str, Any]]):
            async def receive() -> dict[str, Any]:
                return await inbox.get()

            async def send(message: dict[str, Any]) -> None:
                sent.append(message)

            await app.asgi_app(scope(), receive, send)  # type: ignore[arg-type]

        first_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        first_sent: list[dict[str, Any]] = []
        await first_in.put({"type": "websocket.connect"})
        first = asyncio.ensure_future(session(first_in, first_sent))
        deadline = time.monotonic() + 5
        while not first_sent:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert first_sent[0]["type"] == "websocket.accept"

        second_in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        second_sent: list[dict[str, Any]] = []
        await second_in.put({"type": "websocket.connect"})
        await asyncio.wait_for(session(second_in, second_sent), 5)
        kinds = [m["type"] for m in second_sent]
        assert kinds == ["websocket.accept", "websocket.send", "websocket.close"], second_sent
        notices = json.loads(second_sent[1]["text"])
        assert notices[0]["type"] == "notice" and notices[0]["code"] == "too_many_connections"
        assert second_sent[2]["code"] == 1008

        await first_in.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(first, 5)
