"""Browser end to end on a network that drops UDP: headless Chromium runs inside a network
namespace of the lab (tests/netlab.py) whose nftables rules drop every UDP datagram on its
link, so WebRTC's ICE cannot connect by any path (loopback tricks do not apply: the server
is on another namespace, reached over the lab's bridge). Vitrine and a real WHIP publisher
run in their own namespaces. The real show page must notice by itself, play the show over
low-latency HLS (currentTime advancing, the page's reported path `hls`) and keep the chat
working over its TCP socket. Select with `-m netlab`; skipped where namespaces or Chromium
cannot be had; every namespace and process goes in `finally`.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netlab import PROFILES, Lab, http, sh, unavailable
from tests.test_browser_live import ARGS, CHROMIUM

REASON = unavailable()
pytestmark = [
    pytest.mark.netlab,
    pytest.mark.skipif(REASON is not None, reason=f"network lab: {REASON}"),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    running = Lab(tmp_path / "lab")
    try:
        yield running
    finally:
        running.close()


def chromium_in(ns: str, folder: Path) -> Path:
    """An executable that starts Debian's Chromium inside namespace `ns`. Playwright drives
    it over the pipe it hands the browser (--remote-debugging-pipe), which `ip netns exec`
    keeps open: the browser's network is the namespace's, Playwright stays here."""
    wrapper = folder / "chromium-in-namespace"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def joins(data_dir: Path, show_id: int) -> list[str | None]:
    with sqlite3.connect(data_dir / "vitrine.sqlite3") as conn:
        rows = conn.execute(
            "SELECT props FROM events WHERE show_id = ? AND kind = 'join' ORDER BY id", (show_id,)
        ).fetchall()
    return [json.loads(r[0]).get("path") for r in rows]


async def test_a_browser_on_a_network_that_drops_udp_plays_over_hls_and_chats(
    lab: Lab, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    server = lab.start_server()
    show, key = server.create_show("UDP blocked")
    pub = lab.add_host("pub", PROFILES["clean"])
    lab.publisher(pub, show, key)
    viewer = lab.add_host("viewer", PROFILES["udp-blocked"])

    # The rendition exists (H264 from the publisher), seen from the viewer's namespace:
    # TCP goes through, only UDP is dropped.
    deadline = time.monotonic() + 20
    while http(viewer.ns, "GET", f"{server.url}/hls/{show}/index.m3u8")[0] != 200:
        assert time.monotonic() < deadline, "no HLS rendition from the publisher"
        await asyncio.sleep(0.3)
    # ... and UDP is dropped there (with the same host on a clean profile the page below
    # stays on WebRTC: the path assertion is what fails).
    rules = sh("ip", "netns", "exec", viewer.ns, "nft", "list", "ruleset")
    assert "udp drop" in rules, rules

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(chromium_in(viewer.ns, tmp_path)), args=ARGS
        )
        try:
            ctx = await browser.new_context(
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                user_agent=(
                    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
                    "(KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
                ),
            )
            page = await ctx.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            started = time.monotonic()
            await page.goto(f"{server.url}/shows/{show}")
            # The page tries WebRTC first (it exists in this browser) and, ICE not
            # connecting, moves to HLS by itself.
            await page.wait_for_function(
                "() => document.body.dataset.playerState === 'playing'", timeout=45000
            )
            assert await page.evaluate("() => document.body.dataset.playerPath") == "hls"
            assert await page.evaluate("() => typeof window.RTCPeerConnection") == "function"
            t0 = await page.evaluate("() => document.querySelector('#player').currentTime")
            await page.wait_for_timeout(2500)
            t1 = await page.evaluate("() => document.querySelector('#player').currentTime")
            assert t1 > t0 + 1.5, (t0, t1)
            assert time.monotonic() - started < 40
            assert not await page.locator("#stage-state").is_visible()  # no technical message

            await page.fill("#chat-input", "no UDP here")
            await page.click("#chat-send")
            await page.wait_for_selector("#name-form:not([hidden])", timeout=5000)
            await page.fill("#name-input", "Ines")
            await page.click("#name-save")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#chat-messages li')]"
                ".some(li => li.textContent.includes('no UDP here'))",
                timeout=10000,
            )
            # The server holds no WebRTC viewer for this page, and the KPI join says hls.
            assert server.status(show)["viewers"] == 0
            deadline = time.monotonic() + 15
            while "hls" not in joins(server.data_dir, show):
                assert time.monotonic() < deadline, joins(server.data_dir, show)
                await asyncio.sleep(0.5)
            assert problems == []
        finally:
            await browser.close()
