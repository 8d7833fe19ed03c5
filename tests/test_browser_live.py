"""Browser end to end: the seller goes live from the real studio page in headless
Chromium (fake camera), and a viewer's show page plays the video through the relay."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import PASSWORD, ROOT, LiveServer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def create_host(server: LiveServer) -> str:
    email = "host@example.com"
    env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(server.data_dir)}
    subprocess.run(
        [sys.executable, "-m", "appliance", "create-admin", "--email", email, "--password-stdin"],
        input=PASSWORD + "\n",
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    return email


async def test_seller_goes_live_and_viewer_plays(live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright

    email = create_host(live_server)
    show = json.loads(
        live_server.cli(
            "shows", "create", "--title", "Browser live", "--starts-at", "2030-01-01T10:00"
        )
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            seller = await browser.new_context(
                viewport={"width": 390, "height": 844}, bypass_csp=True
            )
            page = await seller.new_page()
            await page.goto(f"{live_server.url}/login?next=/studio/{show['id']}")
            await page.fill("#f-email", email)
            await page.fill("#f-password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"**/studio/{show['id']}")
            await page.wait_for_function(
                "document.querySelector('#preview').videoWidth > 0", timeout=15000
            )

            viewer_ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, bypass_csp=True
            )
            viewer = await viewer_ctx.new_page()
            await viewer.goto(f"{live_server.url}/shows/{show['id']}")
            await viewer.wait_for_function(
                "document.body.dataset.playerState === 'waiting'", timeout=15000
            )

            page.on("dialog", lambda dialog: dialog.accept())
            await page.click("#go-live")
            await page.wait_for_function(
                "document.body.dataset.studioState === 'live'", timeout=20000
            )

            # The waiting viewer switches to the video on its own.
            await viewer.wait_for_function(
                "document.body.dataset.playerState === 'playing'", timeout=20000
            )
            await viewer.wait_for_function(
                "document.querySelector('#player').videoWidth > 0", timeout=15000
            )
            t0 = await viewer.evaluate("document.querySelector('#player').currentTime")
            await viewer.wait_for_timeout(1500)
            t1 = await viewer.evaluate("document.querySelector('#player').currentTime")
            assert t1 > t0, (t0, t1)
            assert await viewer.is_visible("#unmute")
            status = json.loads(
                await (
                    await viewer.request.get(f"{live_server.url}/api/shows/{show['id']}/status")
                ).text()
            )
            assert status == {"status": "live", "publishing": True, "viewers": 1}

            # A viewer who arrives while the show is live plays it too, from the layers
            # the studio is already sending.
            late_ctx = await browser.new_context(
                viewport={"width": 360, "height": 640}, bypass_csp=True
            )
            late = await late_ctx.new_page()
            await late.goto(f"{live_server.url}/shows/{show['id']}")
            await late.wait_for_function(
                "document.querySelector('#player').videoWidth > 0", timeout=20000
            )
            t0 = await late.evaluate("document.querySelector('#player').currentTime")
            await late.wait_for_timeout(1500)
            t1 = await late.evaluate("document.querySelector('#player').currentTime")
            assert t1 > t0, (t0, t1)
            await late_ctx.close()

            await page.click("#go-live")  # now "End show", confirmed by the dialog handler
            await page.wait_for_function(
                "document.body.dataset.studioState === 'ended'", timeout=15000
            )
            await viewer.wait_for_function(
                "document.body.dataset.playerState === 'ended'", timeout=15000
            )
        finally:
            await browser.close()
