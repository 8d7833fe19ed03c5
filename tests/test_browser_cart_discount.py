"""The phone player's cart applies the viewer's offer code at checkout (Shopify's
/discount/<code>?redirect=/cart/...), in Debian's Chromium against the real server with
a live show: the code the offer box shows goes to the checkout link, and leaves it when
the offer ends."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import PASSWORD, LiveServer
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_browser_player import phone, playing, server, show  # noqa: F401 (fixtures)
from tests.test_room import Room
from tests.test_room_moderation import staff_cookie_again

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]
CHECKOUT = "document.body.dataset.checkoutUrl || ''"


async def test_the_offer_code_is_applied_at_checkout(server: LiveServer, show: int) -> None:  # noqa: F811
    from playwright.async_api import async_playwright

    room = Room(server, show)
    staff = await room.join(cookie=staff_cookie_again(server))  # the show's admin
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # The shop sells on Shopify: checkout is one cart permalink.
            admin = await (await browser.new_context()).new_page()
            await admin.goto(f"{server.url}/login?next=/admin/settings")
            await admin.fill("#f-email", "admin@example.com")
            await admin.fill("#f-password", PASSWORD)
            await admin.click("button[type=submit]")
            await admin.wait_for_url("**/admin/settings")
            await admin.select_option("#f-cart_platform", "shopify")
            await admin.fill("#f-cart_url_template", "https://shop.example.com/cart/{sku}:{qty}")
            await admin.click("form[action='/admin/settings'] button[type=submit]")
            await admin.wait_for_url("**/admin/settings?saved=1")

            ctx = await phone(browser, 390, 844)
            page = await ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"{server.url}/shows/{show}")
            await playing(page)
            await page.tap(".lineup li[data-product-id='3'] a[data-kpi=add_to_cart]")
            await page.wait_for_function("document.body.dataset.cartCount === '1'", timeout=5000)
            await page.wait_for_function(f"({CHECKOUT}).includes('/cart/40003:1?')", timeout=10000)
            assert "/discount/" not in await page.evaluate(CHECKOUT)

            await staff.send(type="start_offer", code="LIVE10", minutes=5)
            # The offer box holds the code (on screen once the viewer opens the chat).
            await page.wait_for_function("!document.getElementById('offer-code-wrap').hidden")
            assert await page.text_content("#offer-code") == "LIVE10"
            await page.wait_for_function(f"({CHECKOUT}).includes('/discount/')", timeout=10000)
            checkout = await page.evaluate(CHECKOUT)
            parts = urlsplit(checkout)
            assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
                "https://shop.example.com/discount/LIVE10"
            )
            (redirect,) = parse_qs(parts.query)["redirect"]
            assert redirect.startswith("/cart/40003:1?")
            assert parse_qs(urlsplit(redirect).query)["utm_campaign"] == [f"show-{show}"]
            href = await page.get_attribute("#cart-checkout-link", "href")
            assert href == checkout

            await staff.send(type="end_offer")
            await page.wait_for_function(f"!({CHECKOUT}).includes('/discount/')", timeout=10000)
            assert (await page.evaluate(CHECKOUT)).startswith("https://shop.example.com/cart/")
            assert errors == []
        finally:
            await browser.close()
            await room.close()
