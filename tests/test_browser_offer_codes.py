"""The moderation panel's offer form imports single-use codes from the shop's CSV export,
in Debian's Chromium against the real server: the file goes up with the page's CSRF
token, the codes join the pasted ones, the form says what it did, a bad file is refused
with its reason, and the offer started carries every code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PASSWORD, LiveServer
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_room import Room
from tests.test_room_moderation import new_show

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
)
SHOPIFY = b"\xef\xbb\xbfCode,Usage Count\r\nLIVE-1,0\r\nLIVE-2,0\r\n\r\nLIVE-1,0\r\nLIVE-3,0\r\n"


async def test_codes_imported_from_a_csv_file(live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright

    server = live_server
    show = new_show(server)
    server.cli_input(
        ["create-admin", "--email", "admin@example.com", "--name", "Ada", "--password-stdin"],
        PASSWORD,
    )
    room = Room(server, show)
    viewer = await room.join("Ana")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await (
                await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True)
            ).new_page()
            await page.goto(f"{server.url}/login?next=/admin/shows/{show}")
            await page.fill("#f-email", "admin@example.com")
            await page.fill("#f-password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"**/admin/shows/{show}")
            await page.wait_for_function(
                "document.body.dataset.roomStaff === 'true'", timeout=15000
            )
            await page.fill("#offer-codes", "PASTED-1\nLIVE-2")

            await page.set_input_files(
                "#offer-codes-file",
                files=[{"name": "export.csv", "mimeType": "text/csv", "buffer": SHOPIFY}],
            )
            await page.wait_for_function(
                "document.getElementById('offer-codes-status').textContent.includes('added')"
            )
            status = await page.text_content("#offer-codes-status")
            assert status == "2 codes added, 2 duplicates skipped"  # LIVE-2 was pasted
            codes = (await page.input_value("#offer-codes")).split("\n")
            assert codes == ["PASTED-1", "LIVE-2", "LIVE-1", "LIVE-3"]

            bad = b"code\nLIVE-9\nnot a code\n"
            await page.set_input_files(
                "#offer-codes-file",
                files=[{"name": "bad.csv", "mimeType": "text/csv", "buffer": bad}],
            )
            await page.wait_for_function(
                "document.getElementById('offer-codes-status').textContent.includes('Line 3')"
            )
            assert (await page.input_value("#offer-codes")).split("\n") == codes

            await page.click("#offer-start")
            offer = await viewer.wait("offer", lambda m: m["offer"] is not None)
            assert offer["offer"]["quantity"] == 4 and offer["offer"]["remaining"] == 4
        finally:
            await browser.close()
            await room.close()
