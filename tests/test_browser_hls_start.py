"""Browser end to end: "From the start" on a live show (web/static/js/player/hls.js). A
page playing over HLS in Chromium (hls.js, no WebRTC) shows the button once the show's
start playlist exists; pressed, the player goes back to the show's first seconds (the
recording's start playlist, docs/media.md) and plays on from there; pressed again, "Back
to live" returns to the live edge. A page on WebRTC gets the button too and goes over HLS
to use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.test_browser_hls import NO_WEBRTC, plays
from tests.test_browser_hls import show as show  # the fixture: a live show, WHIP publisher
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]
TIME = "document.querySelector('#player').currentTime"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(tmp_path / "data", tmp_path / "server.log")  # recorded, as by default
    yield live
    stop(live)


async def test_from_the_start_and_back_to_live(server: LiveServer, show: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
            await ctx.add_init_script(NO_WEBRTC)
            page = await ctx.new_page()
            asked: list[str] = []
            page.on("request", lambda r: asked.append(r.url))
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(f"{server.url}/shows/{show}")
            await plays(page)
            await page.wait_for_selector("#from-start:not([hidden])", timeout=20000)
            assert await page.get_attribute("#from-start", "aria-label") == "From the start"
            await page.wait_for_function(f"() => {TIME} > 8", timeout=30000)  # live, 8 s in

            await page.tap("#from-start")
            await page.wait_for_function("() => document.body.dataset.hlsFrom === 'start'")
            assert await page.get_attribute("#from-start", "aria-pressed") == "true"
            assert await page.get_attribute("#from-start", "aria-label") == "Back to live"
            # Back at the show's first seconds, and playing on from there.
            await page.wait_for_function(f"() => {TIME} > 0.5 && {TIME} < 4", timeout=20000)
            await plays(page)
            assert any(u.endswith(f"/hls/{show}/start.m3u8") for u in asked)
            assert any(f"/hls/{show}/start/part-" in u for u in asked)

            await page.tap("#from-start")
            await page.wait_for_function("() => document.body.dataset.hlsFrom === 'live'")
            await page.wait_for_function(f"() => {TIME} > 8", timeout=20000)
            await plays(page)
            assert problems == []

            # A page on WebRTC: the button takes it over HLS, to the start.
            other = await (await browser.new_context()).new_page()
            await other.goto(f"{server.url}/shows/{show}")
            await plays(other)
            assert await other.evaluate("() => document.body.dataset.playerPath") == "webrtc"
            await other.wait_for_selector("#from-start:not([hidden])", timeout=20000)
            await other.click("#from-start")
            await other.wait_for_function(
                "() => document.body.dataset.playerPath === 'hls'"
                " && document.body.dataset.hlsFrom === 'start'"
            )
            await other.wait_for_function(f"() => {TIME} > 0.5 && {TIME} < 4", timeout=20000)
        finally:
            await browser.close()
