"""Browser end to end for the phone player (issue 13): a live show published by a real WHIP
client, watched in Chromium as a phone (touch, mobile user agent) at 390x844, 360x640 and
640x360, and on a desktop. On a phone the video, the newest chat message, the chat input
and the pinned product are all inside the viewport at once with no scrolling; "Add to
cart" keeps the viewer in the show (same URL, no new page, the video keeps playing) and
fills the in-show cart, whose "Checkout" hands the whole cart to the shop as one Shopify
cart permalink. Screenshots are kept in the test's temporary directory."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import PASSWORD, LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Mobile Safari/537.36"
)
# Every box inside the viewport, and the page not scrolled.
ON_SCREEN = """(ids) => {
  const out = {};
  for (const sel of ids) {
    const el = document.querySelector(sel);
    if (!el) { out[sel] = 'missing'; continue; }
    const r = el.getBoundingClientRect();
    const ok = r.width > 0 && r.height > 0 && r.top >= -0.5 && r.left >= -0.5 &&
      r.bottom <= window.innerHeight + 0.5 && r.right <= window.innerWidth + 0.5;
    if (!ok) out[sel] = [r.left, r.top, r.right, r.bottom, window.innerWidth, window.innerHeight];
  }
  if (window.scrollY !== 0) out.scrollY = window.scrollY;
  return out;
}"""
NEEDED = ["#player", "#chat-messages li:last-child", "#chat-input", "#pinned"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(tmp_path / "data", tmp_path / "server.log", {"VITRINE_MEDIA_RECORD": "false"})
    yield live
    stop(live)


@pytest.fixture
async def show(server: LiveServer) -> AsyncIterator[int]:
    server.cli("seed-demo")
    server.cli_input(
        ["create-admin", "--email", "admin@example.com", "--name", "Ada", "--password-stdin"],
        PASSWORD,
    )
    created = json.loads(
        server.cli("shows", "create", "--title", "Phone show", "--starts-at", "2030-01-01T10:00")
    )
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(created["id"], 2, 0), (created["id"], 3, 1)],
        )
        conn.execute("UPDATE products SET variant_id = '4000' || id")
    # A portrait camera, as a phone held upright publishes.
    pc, offer = await make_publisher(CounterVideoTrack(384, 640, 30))
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


async def phone(browser: Any, width: int, height: int) -> Any:
    return await browser.new_context(
        viewport={"width": width, "height": height},
        is_mobile=True,
        has_touch=True,
        user_agent=PHONE_UA,
        bypass_csp=True,  # wait_for_function evaluates strings
    )


async def playing(page: Any) -> float:
    await page.wait_for_function(
        # A frame may still be loading its document: no body or player yet.
        "() => !!document.body && document.body.dataset.playerState === 'playing' && "
        "!!document.querySelector('#player') && "
        "document.querySelector('#player').currentTime > 0",
        timeout=30000,
    )
    t: float = await page.evaluate("() => document.querySelector('#player').currentTime")
    return t


async def test_phone_player_overlay_and_in_show_cart(
    server: LiveServer, show: int, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    url = f"{server.url}/shows/{show}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # Staff pin a product from the admin show page; a viewer writes in the chat.
            staff = await (
                await browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            ).new_page()
            await staff.goto(f"{server.url}/login?next=/admin/shows/{show}")
            await staff.fill("#f-email", "admin@example.com")
            await staff.fill("#f-password", PASSWORD)
            await staff.click("button[type=submit]")
            await staff.wait_for_url(f"**/admin/shows/{show}")
            # The shop sells on Shopify: checkout is one cart permalink.
            await staff.goto(f"{server.url}/admin/settings")
            await staff.select_option("#f-cart_platform", "shopify")
            await staff.fill("#f-cart_url_template", "https://shop.example.com/cart/{sku}:{qty}")
            await staff.click("form[action='/admin/settings'] button[type=submit]")
            await staff.wait_for_url("**/admin/settings?saved=1")
            await staff.goto(f"{server.url}/admin/shows/{show}")
            await staff.wait_for_function(
                "document.body.dataset.roomStaff === 'true'", timeout=15000
            )
            await staff.click("#pin-product-2")

            ctx = await phone(browser, 390, 844)
            page = await ctx.new_page()
            opened: list[str] = []  # any page opened after the show's
            ctx.on("page", lambda pg: opened.append(pg.url))
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(url)
            await playing(page)
            await page.wait_for_selector("#pinned:not([hidden])", timeout=10000)
            await page.fill("#chat-input", "Is it silk?")
            await page.click("#chat-send")
            await page.wait_for_selector("#name-form:not([hidden])", timeout=5000)
            await page.fill("#name-input", "Ana")
            await page.click("#name-save")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#chat-messages li')]"
                ".some(li => li.textContent.includes('Is it silk?'))",
                timeout=10000,
            )
            assert await page.evaluate(ON_SCREEN, NEEDED) == {}
            await page.screenshot(path=str(tmp_path / "player-390x844.png"))

            # The keyboard takes the bottom of the screen: the player follows the visual
            # viewport, so the video keeps a good part of the screen above the input.
            await page.focus("#chat-input")
            await page.set_viewport_size({"width": 390, "height": 480})
            await page.wait_for_function("innerHeight === 480")
            # The player follows on the visual viewport's resize event, a frame or so later.
            await page.wait_for_function(
                "() => document.querySelector('#player').getBoundingClientRect().bottom"
                " <= innerHeight + 1",
                timeout=5000,
            )
            assert await page.evaluate(ON_SCREEN, ["#chat-input", "#player"]) == {}
            player = await page.locator("#player").bounding_box()
            chat_input = await page.locator("#chat-input").bounding_box()
            assert player and chat_input and chat_input["y"] > 150  # video above the input
            await page.set_viewport_size({"width": 390, "height": 844})
            await page.wait_for_function("innerHeight === 844")

            # "Details" in the strip opens the product in a sheet, not a page.
            await page.tap(".lineup li[data-product-id='3'] a[data-kpi=product_click]")
            await page.wait_for_selector("#product-sheet:not([hidden])", timeout=5000)
            assert await page.text_content("#product-sheet-name") == "Leather tote"
            await page.tap("#product-sheet-close")

            # "Add to cart" on the pinned card: same page, no new one, the video plays on.
            t0 = await page.evaluate("() => document.querySelector('#player').currentTime")
            await page.tap("#pinned-cart")
            await page.wait_for_selector("#cart-sheet:not([hidden])", timeout=5000)
            await page.tap("#cart-close")  # and from the line-up's strip
            await page.tap(".lineup li[data-product-id='3'] a[data-kpi=add_to_cart]")
            await page.wait_for_function("document.body.dataset.cartCount === '2'", timeout=5000)
            await page.wait_for_timeout(1200)
            t1 = await page.evaluate("() => document.querySelector('#player').currentTime")
            assert t1 > t0 + 0.8, (t0, t1)
            assert page.url == url and opened == []
            await page.wait_for_function(
                "(document.body.dataset.checkoutUrl || '').includes('40002:1,40003:1')",
                timeout=5000,
            )
            await page.screenshot(path=str(tmp_path / "cart-390x844.png"))
            checkout = await page.evaluate("document.body.dataset.checkoutUrl")
            assert checkout.startswith("https://shop.example.com/cart/40002:1,40003:1?")
            query = parse_qs(urlsplit(checkout).query)
            assert query["utm_campaign"] == [f"show-{show}"] and query["vitrine_v"]

            # Checkout hands the cart over in a new tab; the show stays in this one.
            await ctx.route(
                "https://shop.example.com/**",
                lambda route: route.fulfill(status=200, content_type="text/html", body="cart"),
            )
            async with ctx.expect_page() as popup_info:
                await page.tap("#cart-checkout-link")
            popup = await popup_info.value
            assert popup.url.startswith("https://shop.example.com/cart/40002:1,40003:1?")
            await popup.close()
            assert page.url == url

            # The cart survives a reload (localStorage), and the KPIs have the checkout.
            await page.reload()
            await page.wait_for_function("document.body.dataset.cartCount === '2'", timeout=5000)
            rows: list[Any] = []
            for _ in range(50):
                with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
                    rows = conn.execute(
                        "SELECT kind, props FROM events WHERE show_id = ? "
                        "AND kind IN ('add_to_cart', 'checkout') ORDER BY id",
                        (show,),
                    ).fetchall()
                if any(k == "checkout" for k, _ in rows):
                    break
                await asyncio.sleep(0.2)
            kinds = [k for k, _ in rows]
            assert kinds.count("add_to_cart") == 2 and kinds.count("checkout") == 1, rows
            done = json.loads(next(props for k, props in rows if k == "checkout"))
            assert done["products"] == [[2, 1], [3, 1]] and done["items"] == 2
            assert done["total"] > 0
            assert problems == []
            await ctx.close()

            # Smaller phones, upright and sideways: the same four things on screen at once.
            for width, height in ((360, 640), (640, 360)):
                small = await phone(browser, width, height)
                view = await small.new_page()
                await view.goto(url)
                await playing(view)
                await view.wait_for_selector("#pinned:not([hidden])", timeout=10000)
                await view.wait_for_selector("#chat-messages li", timeout=10000)
                assert await view.evaluate(ON_SCREEN, NEEDED) == {}, (width, height)
                await view.screenshot(path=str(tmp_path / f"player-{width}x{height}.png"))
                await small.close()

            # A desktop: the chat is a side panel beside the video, not over it.
            desk = await browser.new_context(
                viewport={"width": 1280, "height": 800}, bypass_csp=True
            )
            view = await desk.new_page()
            await view.goto(url)
            await playing(view)
            video = await view.locator("#player").bounding_box()
            chat = await view.locator("#chat").bounding_box()
            assert video and chat and chat["x"] >= video["x"] + video["width"]
            tools = await view.locator("#player-tools").bounding_box()
            assert tools and video["y"] + video["height"] <= tools["y"] < video["y"] + 900
            await view.screenshot(path=str(tmp_path / "player-1280x800.png"))
            await desk.close()
        finally:
            await browser.close()


async def test_replay_in_the_same_player_shares_the_chapter_and_resumes(
    live_server: LiveServer, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    from tests.test_browser_replay import ended_show_with_replay

    show, _names = ended_show_with_replay(live_server, tmp_path)
    url = f"{live_server.url}/shows/{show}"
    now = "() => document.getElementById('replay').currentTime"
    play = "() => { const v = document.getElementById('replay'); v.muted = true; v.play(); }"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await phone(browser, 390, 844)
            page = await ctx.new_page()
            # A link to a chapter opens there.
            await page.goto(f"{url}?t=6")
            await page.wait_for_function(
                "() => document.getElementById('replay').readyState >= 1", timeout=15000
            )
            assert await page.evaluate(now) >= 6
            await page.evaluate(play)
            await page.wait_for_function("() => document.body.dataset.replayChapter === '1'")
            # The product shown now goes into the same cart; the replay plays on.
            t0 = await page.evaluate(now)
            await page.tap("#now-cart")
            await page.wait_for_function("document.body.dataset.cartCount === '1'", timeout=5000)
            assert page.url == f"{url}?t=6"
            await page.wait_for_timeout(800)
            assert await page.evaluate(now) > t0
            # Share gives the link to the current chapter.
            await page.tap("#share")
            await page.wait_for_function("document.body.dataset.shareUrl", timeout=5000)
            assert await page.evaluate("document.body.dataset.shareUrl") == f"{url}?t=6"
            await page.screenshot(path=str(tmp_path / "replay-390x844.png"))
            # Leaving and coming back resumes where the viewer was.
            await page.wait_for_function(f"() => ({now})() >= 8", timeout=10000)
            await page.goto(f"{live_server.url}/")
            await page.goto(url)
            await page.wait_for_function(
                "() => document.getElementById('replay').readyState >= 1", timeout=15000
            )
            assert await page.evaluate(now) >= 7.5
        finally:
            await browser.close()
