"""Browser end to end: the show page plays over low-latency HLS by itself where WebRTC
cannot be used (a page without RTCPeerConnection) or may not (the relay is at
`media.max_viewers`), with the chat working the same; a viewer within the limit stays on
WebRTC, and the KPI join says which path each page took."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]
NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {"VITRINE_MEDIA_RECORD": "false", "VITRINE_MEDIA_MAX_VIEWERS": "1"},
    )
    yield live
    stop(live)


@pytest.fixture
async def show(server: LiveServer) -> AsyncIterator[int]:
    created = json.loads(
        server.cli("shows", "create", "--title", "HLS show", "--starts-at", "2030-01-01T10:00")
    )
    pc, offer = await make_publisher(CounterVideoTrack(320, 180, 30), codec="video/H264")
    request = urllib.request.Request(
        f"{server.url}/whip/{created['id']}",
        data=offer.encode(),
        method="POST",
        headers={
            "Content-Type": "application/sdp",
            "Authorization": f"Bearer {created['stream_key']}",
        },
    )
    reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
    await answer(pc, reply.read().decode())
    yield int(created["id"])
    await pc.close()


async def plays(page: Any) -> None:
    """The page's video plays: the player says so and currentTime advances. The pages keep
    the app's CSP (no bypass): hls.js must run under it."""
    await page.wait_for_function(
        "() => document.body.dataset.playerState === 'playing'", timeout=30000
    )
    t0 = await page.evaluate("() => document.querySelector('#player').currentTime")
    # A second of the show played, however long a busy machine takes to play it (a
    # low-latency player at the live edge may wait a moment for the next part).
    await page.wait_for_function(
        "(t0) => document.querySelector('#player').currentTime > t0 + 1", arg=t0, timeout=15000
    )


def joins(server: LiveServer, show_id: int) -> list[str | None]:
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        rows = conn.execute(
            "SELECT props FROM events WHERE show_id = ? AND kind = 'join' ORDER BY id", (show_id,)
        ).fetchall()
    return [json.loads(r[0]).get("path") for r in rows]


async def test_a_browser_without_webrtc_plays_over_hls_and_chats(
    server: LiveServer, show: int
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 390, "height": 844})
            await ctx.add_init_script(NO_WEBRTC)
            page = await ctx.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(f"{server.url}/shows/{show}")
            await plays(page)
            assert await page.evaluate("() => document.body.dataset.playerPath") == "hls"
            assert await page.evaluate("() => typeof window.Hls") == "function"  # loaded on demand
            overlay = await page.locator("#stage-state").is_visible()
            assert not overlay  # no technical message, no overlay while playing

            await page.fill("#chat-input", "over HLS")
            await page.click("#chat-send")
            await page.wait_for_selector("#name-form:not([hidden])", timeout=5000)
            await page.fill("#name-input", "Ana")
            await page.click("#name-save")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#chat-messages li')]"
                ".some(li => li.textContent.includes('over HLS'))",
                timeout=10000,
            )
            assert problems == []
        finally:
            await browser.close()


async def test_past_max_viewers_the_next_viewer_gets_hls(server: LiveServer, show: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            first = await (await browser.new_context()).new_page()
            await first.goto(f"{server.url}/shows/{show}")
            await plays(first)
            assert await first.evaluate("() => document.body.dataset.playerPath") == "webrtc"

            second = await (await browser.new_context()).new_page()
            await second.goto(f"{server.url}/shows/{show}")
            await plays(second)
            assert await second.evaluate("() => document.body.dataset.playerPath") == "hls"
            # The first viewer stays on WebRTC, counted by the relay.
            assert await first.evaluate("() => document.body.dataset.playerPath") == "webrtc"
            reply = await asyncio.to_thread(
                urllib.request.urlopen, f"{server.url}/api/shows/{show}/status"
            )
            status = json.loads(reply.read())
            assert status["viewers"] == 1
            # The KPI join says which path each page got (the second one's again, once it
            # switched).
            deadline = time.monotonic() + 15
            while joins(server, show)[-1:] != ["hls"]:
                assert time.monotonic() < deadline, joins(server, show)
                await asyncio.sleep(0.5)
            assert joins(server, show) == ["webrtc", "webrtc", "hls"]
        finally:
            await browser.close()


# ICE that cannot connect, as on a network that drops UDP: neither side learns the other's
# candidates (stripped from the offer the page sends and from the answer it gets).
NO_ICE = """
(() => {
  const P = window.RTCPeerConnection.prototype;
  const strip = (sdp) =>
    sdp.split("\\r\\n").filter((l) => !l.startsWith("a=candidate")).join("\\r\\n");
  const setRemote = P.setRemoteDescription;
  P.setRemoteDescription = function (d) {
    return setRemote.call(this, { type: d.type, sdp: strip(d.sdp) });
  };
  const local = Object.getOwnPropertyDescriptor(P, "localDescription");
  Object.defineProperty(P, "localDescription", {
    get() {
      const d = local.get.call(this);
      return d && { type: d.type, sdp: strip(d.sdp) };
    },
  });
})();
"""


async def test_when_ice_does_not_connect_the_page_switches_to_hls(
    server: LiveServer, show: int
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context()
            await ctx.add_init_script(NO_ICE)
            page = await ctx.new_page()
            started = time.monotonic()
            await page.goto(f"{server.url}/shows/{show}")
            await plays(page)
            assert await page.evaluate("() => document.body.dataset.playerPath") == "hls"
            assert time.monotonic() - started < 20  # the 4 s ICE wait, then HLS
        finally:
            await browser.close()
