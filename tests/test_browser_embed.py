"""Browser end to end: the player on the shop's own site. A shop (a small Quart app on
another localhost origin, with a Shopify-style /cart/add.js that records what it receives)
includes the one-line snippet; a real WHIP publisher goes live; Chromium sees the floating
button, the overlay plays, the miniplayer survives a navigation inside the shop and
resumes, "Add to cart" in the player reaches the shop page as `vitrine:add-to-cart` and
lands in the shop's cart, and the join is counted on the `embed` channel. A page from an
origin that is not allowed cannot frame the player."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config as HyperConfig
from quart import Quart, request

from tests.conftest import ROOT, LiveServer, free_port, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>
</head><body><h1>{title}</h1><a id="next" href="/page2">Next page</a>
<div style="height:2400px"></div>
<script>
window.vitrineAdded = [];
window.addEventListener("vitrine:add-to-cart", function (e) {{
  window.vitrineAdded.push(e.detail);
}});
</script>
<script src="{vitrine}/embed.js" data-poll="2" async></script>
</body></html>"""

FRAMING = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Other</title>
</head><body><iframe id="f" src="{vitrine}/shows/{show}?embed=1" width="400" height="700">
</iframe></body></html>"""


class Shop:
    """A shop site on its own port: pages with the snippet and a cart API."""

    def __init__(self, vitrine: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.vitrine = vitrine
        self.origin = f"http://localhost:{self.port}"
        self.received: list[Any] = []
        self.refuse = ""  # the error /cart/add.js answers with, when set
        self.show = 0
        app = Quart("shop")

        @app.get("/")
        async def home() -> str:
            return PAGE.format(title="Shop home", vitrine=vitrine)

        @app.get("/page2")
        async def page2() -> str:
            return PAGE.format(title="Shop page 2", vitrine=vitrine)

        @app.get("/framed")
        async def framed() -> str:
            return FRAMING.format(vitrine=vitrine, show=self.show)

        @app.post("/")
        async def woocommerce() -> Any:
            if request.args.get("wc-ajax") != "add_to_cart":
                return "", 404
            self.received.append(dict(await request.form))
            return {"fragments": {}, "cart_hash": "abc"}

        @app.get("/cart/")
        async def cart_page() -> str:
            return PAGE.format(title="Your cart", vitrine=vitrine)

        @app.post("/cart/add.js")
        async def add() -> Any:
            body = await request.get_json()
            self.received.append(body)
            if self.refuse:  # as Shopify answers when the item cannot be added
                return {"status": 422, "message": "Cart Error", "description": self.refuse}, 422
            return {"items": body["items"]}

        self.app = app
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        config = HyperConfig()
        config.bind = [f"127.0.0.1:{self.port}"]
        config.accesslog = None
        config.errorlog = None
        self.task = asyncio.create_task(
            serve(self.app, config, shutdown_trigger=self.stopping.wait)  # type: ignore[arg-type]
        )
        for _ in range(100):
            try:
                await asyncio.to_thread(urllib.request.urlopen, self.origin + "/", None, 2)
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("the shop did not start")

    async def close(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await self.task


@pytest.fixture
def shop_port() -> int:
    return free_port()


@pytest.fixture
def platform() -> str:
    return "shopify"


@pytest.fixture
def vitrine(tmp_path: Path, shop_port: int, platform: str) -> Iterator[LiveServer]:
    data = tmp_path / "data"
    env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(data)}
    subprocess.run(
        [sys.executable, "-m", "appliance", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    with sqlite3.connect(data / "vitrine.sqlite3") as db:
        db.execute("UPDATE shop_settings SET cart_platform = ?", (platform,))
        now = int(time.time())
        db.execute(
            "INSERT INTO products (name, description, sku, price_minor, currency, stock_status, "
            "product_url, cart_url, variant_id, created_at, updated_at) VALUES ('Straw hat', '', "
            "'HAT-1', 1990, 'EUR', 'in_stock', ?, ?, '4411', ?, ?)",
            (
                f"http://localhost:{shop_port}/products/straw-hat",
                f"http://localhost:{shop_port}/cart/4411:1",
                now,
                now,
            ),
        )
    server = launch(
        data,
        tmp_path / "server.log",
        {
            "VITRINE_MEDIA_RECORD": "false",
            "VITRINE_EMBED_ALLOWED_ORIGINS": f"http://localhost:{shop_port}",
        },
    )
    yield server
    stop(server)


@pytest.fixture
async def shop(vitrine: LiveServer, shop_port: int) -> AsyncIterator[Shop]:
    s = Shop(vitrine.url.replace("127.0.0.1", "localhost"), shop_port)
    await s.start()
    yield s
    await s.close()


async def go_live(server: LiveServer) -> tuple[int, Any]:
    created = json.loads(
        server.cli("shows", "create", "--title", "Straw hats", "--starts-at", "2030-01-01T10:00")
    )
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as db:
        db.execute(
            "INSERT INTO show_products (show_id, product_id, position) "
            "SELECT ?, id, 0 FROM products WHERE sku = 'HAT-1'",
            (created["id"],),
        )
    pc, offer = await make_publisher(CounterVideoTrack(320, 180, 30), codec="video/H264")
    req = urllib.request.Request(
        f"{server.url}/whip/{created['id']}",
        data=offer.encode(),
        method="POST",
        headers={
            "Content-Type": "application/sdp",
            "Authorization": f"Bearer {created['stream_key']}",
        },
    )
    reply = await asyncio.to_thread(urllib.request.urlopen, req, None, 30)
    await answer(pc, reply.read().decode())
    deadline = time.monotonic() + 30  # the show is live once the publisher's media flows
    while time.monotonic() < deadline:
        url = f"{server.url}/api/shows/{created['id']}/status"
        status = await asyncio.to_thread(urllib.request.urlopen, url, None, 5)
        if json.loads(status.read())["status"] == "live":
            break
        await asyncio.sleep(0.2)
    return int(created["id"]), pc


async def frame_plays(page: Any) -> tuple[Any, float]:
    """The player's iframe once its video plays (currentTime advances), and the seconds it
    took to show its first frame."""
    started = time.monotonic()
    handle = await page.wait_for_selector("[data-vitrine-embed] >> iframe", timeout=10000)
    frame = await handle.content_frame()
    await frame.wait_for_function(
        "() => document.querySelector('#player') && document.querySelector('#player')"
        ".videoWidth > 0",
        timeout=30000,
        polling=50,
    )
    first_frame = time.monotonic() - started
    await frame.wait_for_function(
        "() => document.body.dataset.playerState === 'playing'", timeout=30000
    )
    t0 = await frame.evaluate("() => document.querySelector('#player').currentTime")
    await page.wait_for_timeout(1500)
    t1 = await frame.evaluate("() => document.querySelector('#player').currentTime")
    assert t1 > t0 + 0.5, (t0, t1)
    return frame, first_frame


async def test_the_shop_page_shows_the_live_player_and_fills_its_own_cart(
    vitrine: LiveServer, shop: Shop
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            ctx = await browser.new_context(viewport={"width": 390, "height": 844})
            page = await ctx.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(shop.origin + "/")
            # Nothing is live nor scheduled: no button.
            await page.wait_for_timeout(500)
            assert not await page.locator("[data-vitrine-embed] >> .launcher").is_visible()

            show, pc = await go_live(vitrine)
            shop.show = show
            try:
                button = page.locator("[data-vitrine-embed] >> .launcher button.open")
                await button.wait_for(state="visible", timeout=15000)
                assert "Straw hats" in await button.inner_text()
                loaded = time.monotonic()  # the button on a fresh page load, the show live
                await page.reload(wait_until="commit")
                await button.wait_for(state="visible", timeout=5000)
                to_button = time.monotonic() - loaded
                await button.click()
                frame, to_frame = await frame_plays(page)
                assert await frame.evaluate("() => !document.querySelector('.topbar')")

                # Shrink to the miniplayer, drag it, then navigate inside the shop.
                await page.locator("[data-vitrine-embed] >> .bar button.size").click()
                player = page.locator("[data-vitrine-embed] >> .player")
                assert await player.get_attribute("data-mode") == "mini"
                box = await page.locator("[data-vitrine-embed] >> .bar").bounding_box()
                assert box is not None
                await page.mouse.move(box["x"] + 10, box["y"] + 10)
                await page.mouse.down()
                await page.mouse.move(40, 120, steps=5)
                await page.mouse.up()
                moved = await player.bounding_box()
                assert moved is not None and moved["x"] < 60

                await page.click("#next")
                await page.wait_for_url("**/page2", wait_until="commit")
                frame, resumed = await frame_plays(page)
                player = page.locator("[data-vitrine-embed] >> .player")
                assert await player.get_attribute("data-mode") == "mini"
                again = await player.bounding_box()
                assert again is not None and again["x"] < 60  # where it was dragged to
                print(
                    f"embed: load to button {to_button:.2f} s, tap to first frame "
                    f"{to_frame:.2f} s, navigation to first frame {resumed:.2f} s"
                )
                assert resumed < 3

                # Add to cart in the player: the shop page gets the event, its cart the item.
                await page.locator("[data-vitrine-embed] >> .bar button.size").click()
                frame = await (
                    await page.wait_for_selector("[data-vitrine-embed] >> iframe")
                ).content_frame()
                await frame.wait_for_function(
                    "() => document.body.dataset.embedProducts === '1'", timeout=5000
                )
                await frame.locator('.lineup [data-kpi="add_to_cart"]').first.click()
                await frame.wait_for_function(
                    "() => document.body.dataset.embedCart === 'added'", timeout=10000
                )
                toast = await frame.locator(".embed-toast").inner_text()
                assert toast == "Added to your cart"
                added = await page.evaluate("() => window.vitrineAdded")
                assert added == [
                    {
                        "product_id": 1,
                        "sku": "HAT-1",
                        "variant_id": "4411",
                        "quantity": 1,
                        "price_minor": 1990,
                        "currency": "EUR",
                        "show_id": show,
                    }
                ]
                assert shop.received == [{"items": [{"id": 4411, "quantity": 1}]}]
                assert frame.url.startswith(vitrine.url.replace("127.0.0.1", "localhost"))
                assert page.url == shop.origin + "/page2"  # the shop page never left

                # The shop's own error reaches the player.
                shop.refuse = "You can't add more Straw hat to the cart."
                add = frame.locator('.lineup [data-kpi="add_to_cart"]').first
                await add.click()
                await frame.wait_for_function(
                    "() => document.body.dataset.embedCart === 'failed'", timeout=10000
                )
                assert await frame.locator(".embed-toast").inner_text() == shop.refuse
                assert len(shop.received) == 2

                # A shop whose own code cancels the event adds the item itself, and answers.
                await page.evaluate(
                    """() => window.addEventListener("vitrine:add-to-cart", (e) => {
                        e.preventDefault();
                        setTimeout(() => VitrineEmbed.cartResult(true, "In your bag"), 100);
                    })"""
                )
                await add.click()
                await frame.wait_for_function(
                    "() => document.body.dataset.embedCart === 'added'", timeout=10000
                )
                assert await frame.locator(".embed-toast").inner_text() == "In your bag"
                assert len(shop.received) == 2  # the cart API was left to the shop's code
                assert len(await page.evaluate("() => window.vitrineAdded")) == 3

                # The embed's joins are counted on the `embed` channel with the shop's host.
                await page.wait_for_timeout(1500)  # the KPI buffer is written each second
                with sqlite3.connect(vitrine.data_dir / "vitrine.sqlite3") as db:
                    joins = [
                        json.loads(r[0])
                        for r in db.execute(
                            "SELECT props FROM events WHERE kind = 'join' AND show_id = ?",
                            (show,),
                        )
                    ]
                assert joins and all(j["channel"] == "embed" for j in joins), joins
                assert joins[0]["host"] == f"localhost:{shop.port}"
                assert problems == []
            finally:
                await pc.close()
        finally:
            await browser.close()


async def test_an_origin_not_in_the_list_cannot_frame_the_player(
    vitrine: LiveServer, shop: Shop
) -> None:
    from playwright.async_api import async_playwright

    other = Shop(vitrine.url.replace("127.0.0.1", "localhost"))  # another port: not listed
    created = json.loads(
        vitrine.cli("shows", "create", "--title", "Framed", "--starts-at", "2030-01-01T10:00")
    )
    other.show = shop.show = int(created["id"])
    await other.start()
    try:
        url = vitrine.url.replace("127.0.0.1", "localhost") + f"/shows/{other.show}?embed=1"
        reply = await asyncio.to_thread(urllib.request.urlopen, url, None, 10)
        csp = reply.headers["Content-Security-Policy"]
        assert f"frame-ancestors 'self' {shop.origin}" in csp
        assert other.origin not in csp

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page()
                for site, allowed in ((other, False), (shop, True)):
                    await page.goto(site.origin + "/framed")
                    frame = await (await page.wait_for_selector("#f")).content_frame()
                    await page.wait_for_timeout(1000)
                    shown = (
                        await frame.evaluate("() => !!document.querySelector('[data-show-id]')")
                        if frame and not frame.url.startswith("chrome-error")
                        else False
                    )
                    assert shown is allowed, site.origin
            finally:
                await browser.close()
    finally:
        await other.close()


async def test_the_next_show_and_a_products_replays_on_the_shop_page(
    vitrine: LiveServer, shop: Shop
) -> None:
    from playwright.async_api import async_playwright

    soon = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() + 2 * 3600))
    upcoming = json.loads(
        vitrine.cli("shows", "create", "--title", "Summer hats", "--starts-at", soon)
    )
    ended = json.loads(
        vitrine.cli("shows", "create", "--title", "Spring hats", "--starts-at", "2030-01-01T10:00")
    )
    started = time.time() - 3600
    now = int(time.time())
    with sqlite3.connect(vitrine.data_dir / "vitrine.sqlite3") as db:
        db.execute("UPDATE shows SET status = 'ended' WHERE id = ?", (ended["id"],))
        db.execute(
            "INSERT INTO show_pins (show_id, product_id, pinned_at, unpinned_at) "
            "SELECT ?, id, ?, ? FROM products WHERE sku = 'HAT-1'",
            (ended["id"], started + 42.0, started + 60.0),
        )
        db.execute(
            "INSERT INTO replays (show_id, status, duration, full_duration, size, width, "
            "height, published, timeline, created_at, updated_at) "
            "VALUES (?, 'ready', 120, 120, 1, 320, 180, 1, ?, ?, ?)",
            (ended["id"], json.dumps([[started, 0.0, 120.0]]), now, now),
        )
    product_page = PAGE.replace(
        '<a id="next"', '<div data-vitrine="replays" data-product="4411"></div><a id="next"'
    )

    @shop.app.get("/product")
    async def product() -> str:
        return product_page.format(title="Straw hat", vitrine=shop.vitrine)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(shop.origin + "/product")
            launcher = page.locator("[data-vitrine-embed] >> .launcher")
            await launcher.wait_for(state="visible", timeout=10000)
            assert await launcher.get_attribute("data-state") == "next"
            text = await launcher.text_content() or ""
            assert "Summer hats" in text and "Next show" in text
            # The countdown (the CLI reads the time in the shop's time zone: 1 to 3 h away).
            assert re.search(r"0[0-3]:[0-5]\d:[0-5]\d", text), text
            cal = launcher.locator("a.cal")
            assert await cal.get_attribute("href") == (
                f"{vitrine.url}/shows/{upcoming['id']}/calendar.ics"  # server.public_url
            )

            strip = page.locator("[data-vitrine=replays] >> .strip button")
            await strip.first.wait_for(state="visible", timeout=10000)
            assert await strip.count() == 1
            assert "Spring hats" in await strip.first.inner_text()
            await strip.first.click()
            frame = page.locator("[data-vitrine-embed] >> iframe")
            assert await frame.get_attribute("src") == (
                f"{shop.vitrine}/shows/{ended['id']}?embed=1&t=42"
            )
            assert problems == []
        finally:
            await browser.close()


async def test_the_settings_page_previews_the_button_under_vitrines_csp(
    vitrine: LiveServer, shop: Shop
) -> None:
    from playwright.async_api import async_playwright

    from tests.conftest import PASSWORD
    from tests.test_browser_live import create_host

    email = create_host(vitrine)
    soon = time.strftime("%Y-%m-%dT%H:%M", time.localtime(time.time() + 2 * 3600))
    vitrine.cli("shows", "create", "--title", "Summer hats", "--starts-at", soon)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on(  # the browser's own /favicon.ico (Vitrine has none) is no one's doing
                "response",
                lambda r: (
                    problems.append(r.url)
                    if r.status >= 400 and not r.url.endswith("/favicon.ico")
                    else None
                ),
            )
            await page.goto(f"{vitrine.url}/login?next=/admin/settings")
            await page.fill("#f-email", email)
            await page.fill("#f-password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url("**/admin/settings")
            launcher = page.locator("[data-vitrine-embed] >> .launcher")
            await launcher.wait_for(state="visible", timeout=10000)
            # Styled (the shadow root's sheet is not refused by the strict CSP): fixed.
            position = await launcher.evaluate("(e) => getComputedStyle(e).position")
            assert position == "fixed"
            assert "Summer hats" in (await launcher.text_content() or "")
            assert problems == []
        finally:
            await browser.close()


@pytest.mark.parametrize("platform", ["woocommerce"])
async def test_woocommerce_cart_and_checkout_from_the_player(
    vitrine: LiveServer, shop: Shop
) -> None:
    from playwright.async_api import async_playwright

    created = json.loads(
        vitrine.cli("shows", "create", "--title", "Straw hats", "--starts-at", "2030-01-01T10:00")
    )
    with sqlite3.connect(vitrine.data_dir / "vitrine.sqlite3") as db:
        db.execute(
            "INSERT INTO show_products (show_id, product_id, position) "
            "SELECT ?, id, 0 FROM products WHERE sku = 'HAT-1'",
            (created["id"],),
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(shop.origin + "/")
            await page.wait_for_function("() => window.VitrineEmbed")
            await page.evaluate(f"() => VitrineEmbed.open({created['id']})")
            frame = await (
                await page.wait_for_selector("[data-vitrine-embed] >> iframe")
            ).content_frame()
            await frame.wait_for_function(
                "() => document.body.dataset.embedProducts === '1'", timeout=10000
            )
            await frame.locator('.lineup [data-kpi="add_to_cart"]').first.click()
            await frame.wait_for_function(
                "() => document.body.dataset.embedCart === 'added'", timeout=10000
            )
            assert shop.received == [{"product_id": "4411", "quantity": "1"}]

            # "Add to cart" in the product's sheet goes to the shop's cart too, and the
            # in-show cart's button is not offered inside the shop's site.
            await frame.locator('.lineup [data-kpi="product_click"]').first.click()
            await frame.evaluate("() => { document.body.dataset.embedCart = ''; }")
            await frame.locator("#product-sheet-add").click()
            await frame.wait_for_function(
                "() => document.body.dataset.embedCart === 'added'", timeout=10000
            )
            assert len(shop.received) == 2
            assert await frame.evaluate("() => document.body.dataset.cartCount || '0'") == "0"
            assert not await frame.locator("#cart-open").is_visible()

            # Checkout in the player takes the whole page to the shop's cart.
            await frame.evaluate(
                """() => {
                    const a = document.createElement("a");
                    a.href = "#"; a.dataset.checkout = ""; a.textContent = "Checkout";
                    document.body.appendChild(a);
                    a.click();
                }"""
            )
            await page.wait_for_url(shop.origin + "/cart/", timeout=10000)
        finally:
            await browser.close()
