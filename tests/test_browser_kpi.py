"""Browser end to end for KPI capture: the show page reports join, heartbeats, the tap on
"Add to cart" and leave; the shop link it follows carries the show and the viewer; the
shop's thank-you page reports the order through the snippet."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import LiveServer
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)


LOCAL_NETWORK_CHECKS = ",".join(
    [
        "LocalNetworkAccessChecks",
        "PrivateNetworkAccessRespectPreflightResults",
        "BlockInsecurePrivateNetworkRequests",
    ]
)


def events(server: LiveServer, show: int) -> list[tuple[str, str, dict[str, object]]]:
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        rows = conn.execute(
            "SELECT viewer, kind, props FROM events WHERE show_id = ? ORDER BY ts, id", (show,)
        ).fetchall()
    return [(v, k, json.loads(p)) for v, k, p in rows]


async def wait_for_kinds(server: LiveServer, show: int, kinds: set[str]) -> list[tuple]:
    rows: list[tuple] = []
    for _ in range(150):
        rows = events(server, show)
        if kinds <= {kind for _, kind, _ in rows}:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {kinds}, got {rows}")


async def test_show_page_reports_what_the_viewer_does(live_server: LiveServer) -> None:
    from playwright.async_api import async_playwright

    live_server.cli("seed-demo")
    show = json.loads(
        live_server.cli("shows", "create", "--title", "KPIs", "--starts-at", "2030-01-01T10:00")
    )["id"]
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, 2, 0)", (show,)
        )
        price = conn.execute("SELECT price_minor FROM products WHERE id = 2").fetchone()[0]
    async with async_playwright() as p:
        # Here the shop's page (routed) and Vitrine (127.0.0.1) would be a public and a
        # loopback address: Chromium's local-network checks would block the snippet, as
        # they would not between two public sites.
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, f"--disable-features={LOCAL_NETWORK_CHECKS}"]
        )
        try:
            ctx = await browser.new_context(
                viewport={"width": 390, "height": 844},
                bypass_csp=True,
                user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
            )
            followed: list[str] = []

            snippet = f'<script src="{live_server.url}/static/js/vitrine-shop.js"></script>'

            async def shop(route) -> None:  # the shop is not on this machine: answer for it
                followed.append(route.request.url)
                page = f"<p>cart</p>{snippet}"
                if "/thanks" in route.request.url:  # its order confirmation page
                    order = '{order_id: "W-1", amount: 4990, currency: "EUR"}'
                    page = f"<script>window.vitrineOrder = {order};</script>{snippet}"
                await route.fulfill(status=200, content_type="text/html", body=page)

            await ctx.route("https://shop.example.com/**", shop)
            page = await ctx.new_page()
            await page.goto(f"{live_server.url}/shows/{show}?utm_source=newsletter")
            rows = await wait_for_kinds(live_server, show, {"join", "heartbeat"})
            viewer = rows[0][0]
            join = next(props for _, kind, props in rows if kind == "join")
            assert join == {"device": "mobile", "channel": "newsletter", "path": "webrtc"}

            # "Add to cart" fills the in-show cart; "Checkout" takes the viewer to the shop.
            await page.click(".lineup a[data-kpi=add_to_cart]")
            await page.wait_for_function("document.body.dataset.checkoutUrl", timeout=5000)
            async with ctx.expect_page() as opened:
                await page.click("#cart-checkout-link")
            page = await opened.value
            await page.wait_for_load_state()
            rows = await wait_for_kinds(live_server, show, {"add_to_cart", "checkout"})
            cart = next(props for _, kind, props in rows if kind == "add_to_cart")
            assert cart == {"product": 2, "quantity": 1, "price": price}
            done = next(props for _, kind, props in rows if kind == "checkout")
            assert done == {"products": [[2, 1]], "items": 1, "total": price}
            assert {v for v, _, _ in rows} == {viewer}
            query = parse_qs(urlsplit(followed[0]).query)
            assert query["vitrine_v"] == [viewer]
            assert query["utm_source"] == ["vitrine"]
            assert query["utm_campaign"] == [f"show-{show}"]

            # The shop's thank-you page reports the order through the snippet.
            await page.goto("https://shop.example.com/thanks")
            order = None
            for _ in range(100):
                with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
                    order = conn.execute(
                        "SELECT show_id, viewer, amount_minor, signed FROM orders "
                        "WHERE order_id = 'W-1'"
                    ).fetchone()
                if order:
                    break
                await asyncio.sleep(0.1)
            assert order == (show, viewer, 4990, 0)
        finally:
            await browser.close()
