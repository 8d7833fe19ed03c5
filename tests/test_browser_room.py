"""Browser end to end for the live room: a moderator pins a product from the studio's
moderation panel, and a viewer's show page shows the card with its add-to-cart link;
a viewer's chat message (with HTML in it) reaches the moderator as plain text; an admin
moderates from the panel of the admin show page."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from tests.conftest import PASSWORD, LiveServer
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)


async def test_moderator_pins_a_product_for_viewers(live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright

    live_server.cli("seed-demo")
    for email, name in (("mod@example.com", "Mia"), ("admin@example.com", "Ada")):
        live_server.cli_input(
            ["create-admin", "--email", email, "--name", name, "--password-stdin"], PASSWORD
        )
    show = json.loads(
        live_server.cli(
            "shows", "create", "--title", "Room in a browser", "--starts-at", "2030-01-01T10:00"
        )
    )
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute("UPDATE users SET role = 'moderator' WHERE email = 'mod@example.com'")
        conn.execute(
            "INSERT INTO show_moderators (show_id, user_id) "
            "SELECT ?, id FROM users WHERE email = 'mod@example.com'",
            (show["id"],),
        )
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show["id"], 2, 0), (show["id"], 3, 1)],
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            viewer_ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, bypass_csp=True
            )
            viewer = await viewer_ctx.new_page()
            await viewer.goto(f"{live_server.url}/shows/{show['id']}")
            await viewer.wait_for_function(
                "document.body.dataset.roomState === 'open'", timeout=15000
            )
            assert await viewer.is_hidden("#pinned")

            mod_ctx = await browser.new_context(
                viewport={"width": 1280, "height": 900}, bypass_csp=True
            )
            mod = await mod_ctx.new_page()
            await mod.goto(f"{live_server.url}/login?next=/studio/{show['id']}")
            await mod.fill("#f-email", "mod@example.com")
            await mod.fill("#f-password", PASSWORD)
            await mod.click("button[type=submit]")
            await mod.wait_for_function("document.body.dataset.roomStaff === 'true'", timeout=15000)
            assert await mod.locator("#preview").count() == 0  # moderators get no camera

            await mod.click("#pin-product-2")
            await viewer.wait_for_selector("#pinned:not([hidden])", timeout=5000)
            assert await viewer.text_content("#pinned-name") == "Silk scarf"
            href = await viewer.get_attribute("#pinned-cart", "href")
            assert href.startswith("https://shop.example.com/products/scf-014")
            assert "utm_source=vitrine" in href and f"utm_campaign=show-{show['id']}" in href

            # The viewer chats: picks a name, sends HTML that must stay text.
            await viewer.fill("#chat-input", "<b>bold?</b> is it silk")
            await viewer.click("#chat-send")
            await viewer.wait_for_selector("#name-form:not([hidden])", timeout=5000)
            await viewer.fill("#name-input", "Ana")
            await viewer.click("#name-save")
            await mod.wait_for_function(
                "document.querySelectorAll('#mod-messages li').length > 0", timeout=10000
            )
            row = mod.locator("#mod-messages li").first
            assert "<b>bold?</b> is it silk" in await row.text_content()
            assert await mod.locator("#mod-messages li b").count() == 0

            await mod.click("#unpin-product")
            await viewer.wait_for_selector("#pinned", state="hidden", timeout=5000)

            # The same panel on the admin show page: an admin pins a product from there.
            admin_ctx = await browser.new_context(
                viewport={"width": 1280, "height": 900}, bypass_csp=True
            )
            admin = await admin_ctx.new_page()
            await admin.goto(f"{live_server.url}/login?next=/admin/shows/{show['id']}")
            await admin.fill("#f-email", "admin@example.com")
            await admin.fill("#f-password", PASSWORD)
            await admin.click("button[type=submit]")
            await admin.wait_for_function(
                "document.body.dataset.roomStaff === 'true'", timeout=15000
            )
            assert await admin.locator("#f-title").count() == 1  # still the show's settings
            await admin.click("#pin-product-3")
            await viewer.wait_for_selector("#pinned:not([hidden])", timeout=5000)
            assert await viewer.text_content("#pinned-name") != "Silk scarf"
            await admin.select_option("#slow-mode", "10")
            await mod.wait_for_function(
                "document.getElementById('slow-mode').value === '10'", timeout=5000
            )
        finally:
            await browser.close()
