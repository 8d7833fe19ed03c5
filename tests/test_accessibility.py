"""Accessibility (issue 13): axe-core's WCAG 2.0/2.1 A and AA rules, run in Chromium on every
page a viewer, a shop's shopper, a host and an admin open, at 390x844 as a phone (touch,
mobile user agent) and at 1280x800 as a desktop. The show page plays a live show published
by a real WHIP client, with a pinned product, an offer and a chat message over the video;
a viewer's question waits in the admin page's and the studio's moderation panels;
the in-show cart sheet and the product sheet are checked open; the embed is checked on a
shop page from another localhost origin (its floating button, then the player's overlay).
The hearts honour prefers-reduced-motion. axe-core is vendored in tests/vendor/axe-core
and served to the page from its own origin, so each page keeps its real
Content-Security-Policy while it is checked."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD, ROOT, LiveServer, free_port, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_browser_embed import Shop
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_browser_player import PHONE_UA, playing
from tests.test_browser_replay import ended_show_with_replay

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run)"
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]

AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
AXE_PATH = "/__axe-core.js"  # answered by the browser context's route, never by Vitrine
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {
    runOnly: {type: 'tag', values: tags}, resultTypes: ['violations'], iframes: false,
  });
  return result.violations.map((v) => ({
    id: v.id, help: v.help, impact: v.impact,
    nodes: v.nodes.map((n) => ({target: n.target, html: n.html, why: n.failureSummary})),
  }));
}"""
# The worst frame for white text over the video: a white picture (the video hidden, the stage
# white). The text over it must keep its contrast on its own ground, which axe then measures.
WHITE_FRAME = "/__white-frame.css"
WHITE_FRAME_CSS = (
    ".stage { background: #fff !important; } "
    "#player, .stage-poster { visibility: hidden !important; }"
)
# Text of the chat over the video whose contrast axe could not measure (a see-through
# ground): none may be left, as each sits on its own dark ground.
UNMEASURED = """async () => {
  const r = await axe.run(document.querySelector('#chat'), {
    runOnly: {type: 'rule', values: ['color-contrast']}, iframes: false, elementRef: true,
  });
  return r.incomplete.flatMap((v) => v.nodes)
    .filter((n) => !n.element || !n.element.closest('.offer'))
    .map((n) => [n.target.join(' '), n.failureSummary]);
}"""
LIVE_REGION = "(sel) => document.querySelector(sel).getAttribute('aria-live')"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ADMIN = "admin@example.com"
HOST = "host@example.com"


class Audit:
    """The violations found, by page and state, for one report at the end."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}
        self.checked: list[str] = []

    async def check(self, target: Any, name: str) -> None:
        """Run axe in `target` (a page or a frame) as it is now, and keep its violations."""
        if not await target.evaluate("() => typeof window.axe === 'object'"):
            await target.add_script_tag(url=AXE_PATH)
            await target.wait_for_function("() => typeof window.axe === 'object'")
        violations: list[dict[str, Any]] = await target.evaluate(RUN_AXE, TAGS)
        self.checked.append(name)
        if violations:
            self.found[name] = violations

    def report(self) -> str:
        lines = []
        for name, violations in self.found.items():
            for v in violations:
                lines.append(f"{name}: {v['id']} ({v['impact']}) {v['help']}")
                for node in v["nodes"][:8]:
                    lines.append(f"    {node['target']}: {node['why']}".replace("\n", " | "))
        return "\n".join(lines)


async def context(browser: Any, size: dict[str, int], **more: Any) -> Any:
    phone = size == PHONE
    ctx = await browser.new_context(
        viewport=size,
        is_mobile=phone,
        has_touch=phone,
        user_agent=PHONE_UA if phone else None,
        **more,
    )
    source = AXE.read_text()
    await ctx.route(
        f"**{AXE_PATH}",
        lambda route: route.fulfill(status=200, content_type="text/javascript", body=source),
    )
    await ctx.route(
        f"**{WHITE_FRAME}",
        lambda route: route.fulfill(status=200, content_type="text/css", body=WHITE_FRAME_CSS),
    )
    return ctx


async def sign_in(page: Any, base: str, email: str, then: str) -> None:
    await page.goto(f"{base}/login?next={then}")
    await page.fill("#f-email", email)
    await page.fill("#f-password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**{then}")


@pytest.fixture
def shop_port() -> int:
    return free_port()


@pytest.fixture
def server(tmp_path: Path, shop_port: int) -> Iterator[LiveServer]:
    live = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {
            "VITRINE_MEDIA_RECORD": "false",
            "VITRINE_EMBED_ALLOWED_ORIGINS": f"http://localhost:{shop_port}",
        },
    )
    yield live
    stop(live)


@pytest.fixture
def shows(server: LiveServer, tmp_path: Path) -> dict[str, int]:
    """The demo shop, an admin, a host, a show that ended with its replay, one without, a
    scheduled show and the host's show (soon live) with two products in its line-up."""
    replay, _names = ended_show_with_replay(server, tmp_path)  # seeds the demo shop
    for email in (ADMIN, HOST):
        server.cli_input(
            ["create-admin", "--email", email, "--name", email[:4].title(), "--password-stdin"],
            PASSWORD,
        )
    live = json.loads(
        server.cli("shows", "create", "--title", "Silk scarves", "--starts-at", "2030-01-01T10:00")
    )
    later = json.loads(
        server.cli("shows", "create", "--title", "Winter hats", "--starts-at", "2030-02-01T18:30")
    )
    ended = json.loads(
        server.cli("shows", "create", "--title", "Old hats", "--starts-at", "2030-01-01T09:00")
    )
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute("UPDATE shows SET status = 'ended' WHERE id = ?", (ended["id"],))
        conn.execute("UPDATE users SET role = 'host' WHERE email = ?", (HOST,))
        host_id = conn.execute("SELECT id FROM users WHERE email = ?", (HOST,)).fetchone()[0]
        conn.execute("UPDATE shows SET host_id = ? WHERE id = ?", (host_id, live["id"]))
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(live["id"], 2, 0), (live["id"], 3, 1)],
        )
        conn.execute("UPDATE products SET variant_id = '4000' || id")
    return {
        "live": int(live["id"]),
        "live_key": live["stream_key"],
        "replay": replay,
        "later": int(later["id"]),
        "ended": int(ended["id"]),
    }


@pytest.fixture
async def publisher(server: LiveServer, shows: dict[str, Any]) -> AsyncIterator[None]:
    """A real WHIP client publishing a portrait camera to the live show."""
    pc, offer = await make_publisher(CounterVideoTrack(384, 640, 30))
    request = urllib.request.Request(
        f"{server.url}/whip/{shows['live']}",
        data=offer.encode(),
        method="POST",
        headers={
            "Content-Type": "application/sdp",
            "Authorization": f"Bearer {shows['live_key']}",
        },
    )
    reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
    await answer(pc, reply.read().decode())
    yield
    await pc.close()


async def test_pages_pass_axe_wcag_a_and_aa_and_hearts_honour_reduced_motion(
    server: LiveServer, shows: dict[str, int], publisher: None, shop_port: int
) -> None:
    from playwright.async_api import async_playwright

    base = server.url
    live, replay = shows["live"], shows["replay"]
    audit = Audit()
    shop = Shop(base.replace("127.0.0.1", "localhost"), shop_port)
    await shop.start()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # Staff pin a product, start an offer and write in the chat from the admin page.
            staff_ctx = await context(browser, DESKTOP)
            staff = await staff_ctx.new_page()
            await sign_in(staff, base, ADMIN, f"/admin/shows/{live}")
            await staff.wait_for_function(
                "() => document.body.dataset.roomStaff === 'true'", timeout=15000
            )
            await staff.click("#pin-product-2")
            await staff.fill("#offer-code-input", "LIVE10")
            await staff.click("#offer-start")
            await staff.wait_for_selector("#mod-offer-live:not([hidden])", timeout=5000)
            await staff.fill("#mod-chat-input", "Welcome to the show!")
            await staff.click("#mod-chat-send")

            for size in (PHONE, DESKTOP):
                tag = f"{size['width']}x{size['height']}"
                ctx = await context(browser, size)
                page = await ctx.new_page()
                # Public pages, signed out.
                await page.goto(f"{base}/")
                await audit.check(page, f"home {tag}")
                await page.goto(f"{base}/shows/{shows['later']}")
                await audit.check(page, f"scheduled show {tag}")
                await page.goto(f"{base}/shows/{shows['ended']}")
                await audit.check(page, f"ended show without a replay {tag}")
                await page.goto(f"{base}/reminders/confirm/no-such-link")
                await audit.check(page, f"reminder link no longer valid {tag}")
                await page.goto(f"{base}/login")
                await audit.check(page, f"login {tag}")
                await page.goto(f"{base}/shows/999999")
                await audit.check(page, f"not found {tag}")

                # The player: live video, the pinned card, the offer and chat over it.
                await page.goto(f"{base}/shows/{live}")
                await playing(page)
                await audit.check(page, f"player {tag}")
                await page.wait_for_selector("#pinned:not([hidden])", timeout=10000)
                await page.wait_for_selector("#offer:not([hidden])", timeout=10000)
                await page.fill("#chat-input", "Is it silk?")
                # Asked as a question: it waits, unanswered, in the moderation panels below.
                await page.check("#chat-question")
                await page.click("#chat-send")
                await page.wait_for_selector("#name-form:not([hidden])", timeout=5000)
                await audit.check(page, f"player, name form {tag}")
                await page.fill("#name-input", f"Ana {tag}")
                await page.click("#name-save")
                await page.wait_for_function(
                    "() => [...document.querySelectorAll('#chat-messages li')]"
                    ".some(li => li.textContent.includes('Is it silk?'))",
                    timeout=10000,
                )
                await audit.check(page, f"player overlay (pin, offer, chat) {tag}")
                # The chat is a polite live region: new messages are read out, in turn.
                assert await page.evaluate(LIVE_REGION, "#chat-messages") == "polite"
                if size == PHONE:
                    await page.add_style_tag(url=WHITE_FRAME)
                    await audit.check(page, f"player overlay over a white frame {tag}")
                    assert await page.evaluate(UNMEASURED) == []
                    await page.evaluate(
                        f"() => document.querySelector('link[href$=\"{WHITE_FRAME}\"]').remove()"
                    )
                # "Details": the product sheet.
                await page.click(".lineup li[data-product-id='3'] a[data-kpi=product_click]")
                await page.wait_for_selector("#product-sheet:not([hidden])", timeout=5000)
                await audit.check(page, f"product sheet {tag}")
                await page.click("#product-sheet-close")
                # The in-show cart with an item.
                await page.click("#pinned-cart")
                await page.wait_for_selector("#cart-sheet:not([hidden])", timeout=5000)
                await page.wait_for_selector("#cart-items li", timeout=5000)
                await audit.check(page, f"cart sheet {tag}")
                await page.click("#cart-close")

                # The replay, in the same player.
                await page.goto(f"{base}/shows/{replay}?t=3")
                await page.wait_for_function(
                    "() => document.getElementById('replay').readyState >= 1", timeout=15000
                )
                await audit.check(page, f"replay {tag}")

                # Admin pages, signed in as an admin.
                await sign_in(page, base, ADMIN, "/admin")
                admin_pages = [
                    "/admin",
                    "/admin/shows",
                    "/admin/shows/new",
                    f"/admin/shows/{live}",
                    f"/admin/shows/{replay}",
                    f"/admin/shows/{replay}/kpis",
                    "/admin/kpis",
                    "/admin/products",
                    "/admin/products/new",
                    "/admin/products/1",
                    "/admin/products/import",
                    "/admin/settings",
                    "/admin/users",
                    "/account/password",
                ]
                for path in admin_pages:
                    await page.goto(base + path)
                    if path == f"/admin/shows/{live}":
                        await page.wait_for_function(
                            "() => document.body.dataset.roomStaff === 'true'", timeout=15000
                        )
                    await audit.check(page, f"{path} {tag}")
                await ctx.close()

                # The embed on the shop's own page: the floating button, then the overlay.
                ctx = await context(browser, size)
                page = await ctx.new_page()
                await page.goto(shop.origin + "/")
                button = page.locator("[data-vitrine-embed] >> .launcher button.open")
                await button.wait_for(state="visible", timeout=15000)
                await audit.check(page, f"shop page, embed button {tag}")
                await button.click()
                handle = await page.wait_for_selector(
                    "[data-vitrine-embed] >> iframe", timeout=10000
                )
                frame = await handle.content_frame()
                await playing(frame)
                await audit.check(page, f"shop page, embed overlay {tag}")
                await audit.check(frame, f"embedded player {tag}")
                await ctx.close()
            await staff_ctx.close()

            # The seller's studio, signed in as the show's host.
            for size in (PHONE, DESKTOP):
                tag = f"{size['width']}x{size['height']}"
                ctx = await context(browser, size)
                page = await ctx.new_page()
                await sign_in(page, base, HOST, f"/studio/{live}")
                await page.wait_for_selector("#studio-feed li", timeout=15000)
                assert await page.evaluate(LIVE_REGION, "#studio-feed") == "polite"
                await audit.check(page, f"studio {tag}")
                if size == PHONE:  # on a phone the moderation is a sheet over the preview
                    await page.click("#studio-tools")
                    await page.wait_for_selector("#studio-tools[aria-expanded=true]", timeout=5000)
                    await page.wait_for_timeout(400)  # the sheet slides in
                # The viewers' questions wait in the sheet with their answer buttons.
                await page.wait_for_selector("#questions li.mod-question", timeout=10000)
                assert await page.is_visible(
                    "#questions li.mod-question button[data-action=answer]"
                )
                await audit.check(page, f"studio, moderation with a question waiting {tag}")
                await ctx.close()

            # The hearts honour prefers-reduced-motion: the stylesheet hides floating
            # hearts, and a tap floats none (the button glows); without it they float up.
            css = (ROOT / "web" / "static" / "css" / "vitrine.css").read_text()
            rule = re.search(r"@media \(prefers-reduced-motion: reduce\) \{(.*?)\n\}", css, re.S)
            assert rule and ".float-heart" in rule.group(1)
            show_url = f"{base}/shows/{live}"
            assert await hearts_float(browser, show_url, "reduce") == 0
            assert await hearts_float(browser, show_url, "no-preference") >= 1
        finally:
            await browser.close()
            await shop.close()
    print(f"axe: {len(audit.checked)} pages and states checked")
    assert audit.found == {}, "\n" + audit.report()
    assert len(audit.checked) >= 50


async def hearts_float(browser: Any, url: str, motion: str) -> int:
    """The hearts floating up (shown and animated) just after one tap on the heart, with
    prefers-reduced-motion set to `motion`; with "reduce", the button glows instead and
    nothing on the page moves."""
    ctx = await context(browser, PHONE, reduced_motion=motion)
    page = await ctx.new_page()
    await page.goto(url)
    await page.wait_for_function("() => document.body.dataset.roomState === 'open'", timeout=15000)
    await page.tap("#heart")
    await page.wait_for_timeout(150)
    floating: int = await page.evaluate(
        """() => [...document.querySelectorAll('#hearts .float-heart')]
        .filter((h) => getComputedStyle(h).display !== 'none' && h.getAnimations().length)
        .length"""
    )
    if motion == "reduce":
        assert await page.evaluate(
            "() => document.querySelector('#heart').classList.contains('is-glowing')"
        )
        moving = await page.evaluate(
            """() => document.getAnimations().filter((a) => a.effect.getKeyframes()
              .some((k) => k.transform && k.transform !== 'none')).length"""
        )
        assert moving == 0
    await ctx.close()
    return floating
