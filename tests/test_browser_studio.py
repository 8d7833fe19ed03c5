"""Browser end to end for the seller's studio on a phone (issue 13, item 9): the host signs in
on a phone (Chromium, touch, mobile user agent, fake camera) and goes live over WHIP for
real; a viewer in the live room writes a message, asks a question and sends hearts. At
390x844, 360x640 and held sideways at 844x390, the preview, the newest chat line, the
line-up strip with its pin buttons and the End control are all inside the viewport at once
with no scrolling; one tap on the strip pins a product for the viewer's room, a tap on the
pinned one unpins it. The camera follows the way the phone is held. A desktop gets the
moderation panel as a side column. axe-core's WCAG 2 A and AA rules pass on the phone
layout. Screenshots are kept in the test's temporary directory, and in docs/screenshots
when VITRINE_SCREENSHOTS=docs is set (docs/embed.md shows them)."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD, ROOT, LiveServer, launch, stop
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_room import Room

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
AXE = ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
DOCS_SHOTS = ROOT / "docs" / "screenshots"
# Every box inside the viewport (and not hidden under nothing: a real size), page not scrolled.
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
  if (window.scrollY !== 0 || window.scrollX !== 0) out.scroll = [window.scrollX, window.scrollY];
  return out;
}"""
PINNED = "#studio-strip .strip-pin[aria-pressed='true']"
NEEDED = [
    "#preview",
    "#studio-feed li:last-child",
    "#studio-strip",
    PINNED,  # the pinned product's button (the strip brings it into view)
    "#go-live",
    "#studio-hearts",
    "#studio-viewers",
    "#studio-tools",
]
# The strip's pin buttons do not overlap the End control or the chat line (all tappable).
NO_OVERLAP = """(pairs) => pairs.filter(([a, b]) => {
  const r = document.querySelector(a).getBoundingClientRect();
  const s = document.querySelector(b).getBoundingClientRect();
  return r.left < s.right && s.left < r.right && r.top < s.bottom && s.top < r.bottom;
})"""
PAIRS = [
    [PINNED, "#go-live"],
    ["#studio-feed li:last-child", PINNED],
    ["#studio-feed li:last-child", "#go-live"],
]
# The studio's peer connections, kept for the test (the page's own code is unchanged).
KEEP_PCS = """window.__pcs = [];
window.RTCPeerConnection = class extends window.RTCPeerConnection {
  constructor(...args) { super(...args); window.__pcs.push(this); }
};"""
# What the studio's encoder sends now: [width, height] of each active layer (outbound-rtp).
SENT = """async () => {
  const pc = window.__pcs[window.__pcs.length - 1];
  const out = [];
  if (!pc) return out;
  (await pc.getStats()).forEach(r => {
    if (r.type === 'outbound-rtp' && r.kind === 'video' && r.frameWidth) {
      out.push([r.frameWidth, r.frameHeight]);
    }
  });
  return out;
}"""
CAMERA = (
    "() => [document.getElementById('preview').videoWidth, "
    "document.getElementById('preview').videoHeight]"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(tmp_path / "data", tmp_path / "server.log", {"VITRINE_MEDIA_RECORD": "false"})
    yield live
    stop(live)


def make_show(server: LiveServer) -> int:
    server.cli("seed-demo")
    server.cli_input(
        ["create-admin", "--email", "host@example.com", "--name", "Hana", "--password-stdin"],
        PASSWORD,
    )
    created = json.loads(
        server.cli("shows", "create", "--title", "Studio show", "--starts-at", "2030-01-01T10:00")
    )
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(created["id"], 2, 0), (created["id"], 3, 1), (created["id"], 1, 2)],
        )
    return int(created["id"])


async def on_screen(page: Any, selectors: list[str]) -> dict[str, Any]:
    """What is not inside the viewport, once the strip's scroll to the pinned product (smooth
    unless motion is reduced) has had up to 2 s to end."""
    from playwright.async_api import TimeoutError as Timeout

    try:
        await page.wait_for_function(
            f"(ids) => Object.keys(({ON_SCREEN})(ids)).length === 0", arg=selectors, timeout=2000
        )
    except Timeout:
        pass  # the caller's assertion says what is off screen
    found: dict[str, Any] = await page.evaluate(ON_SCREEN, selectors)
    return found


async def sending(page: Any, shape: Callable[[int, int], bool], limit: float = 15) -> None:
    """Waits until every video layer the studio sends has that shape (stats come each second)."""
    deadline = time.monotonic() + limit
    while True:
        sent = await page.evaluate(SENT)
        if sent and all(shape(w, h) for w, h in sent):
            return
        assert time.monotonic() < deadline, sent
        await asyncio.sleep(0.25)


async def shot(page: Any, tmp_path: Path, name: str) -> None:
    await page.screenshot(path=str(tmp_path / name))
    if os.environ.get("VITRINE_SCREENSHOTS") == "docs":
        await page.screenshot(path=str(DOCS_SHOTS / name))


async def axe_violations(page: Any, include: str | None = None) -> list[Any]:
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.add_script_tag(content=AXE.read_text())
    found: list[Any] = await page.evaluate(
        """async (include) => {
          const r = await axe.run(include ? {include: [include]} : document, {runOnly:
            {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
          return r.violations.map(v => [v.id, v.nodes.map(n => n.target.join(' '))]);
        }""",
        include,
    )
    return found


async def signed_in_studio(browser: Any, server: LiveServer, show: int, **context: Any) -> Any:
    ctx = await browser.new_context(bypass_csp=True, **context)
    await ctx.add_init_script(KEEP_PCS)
    page = await ctx.new_page()
    await page.goto(f"{server.url}/login?next=/studio/{show}")
    await page.fill("#f-email", "host@example.com")
    await page.fill("#f-password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"**/studio/{show}")
    await page.wait_for_function(
        "() => document.getElementById('preview').videoWidth > 0", timeout=15000
    )
    return page


async def test_studio_on_a_phone_shows_the_show_over_the_camera(
    server: LiveServer, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    show = make_show(server)
    room = Room(server, show)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await signed_in_studio(
                browser,
                server,
                show,
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                user_agent=PHONE_UA,
            )
            problems: list[str] = []
            page.on("pageerror", lambda e: problems.append(str(e)))
            # Held upright, the camera gives (and the show publishes) a portrait picture.
            width, height = await page.evaluate(CAMERA)
            assert height > width, (width, height)
            assert await page.evaluate("document.body.dataset.studioOrientation") == "portrait"
            # The preview fills the screen: no letterbox on a phone.
            assert (
                await page.evaluate(
                    "getComputedStyle(document.getElementById('preview')).objectFit"
                )
                == "cover"
            )

            page.on("dialog", lambda dialog: dialog.accept())
            await page.tap("#go-live")
            await page.wait_for_function(
                "document.body.dataset.studioState === 'live'", timeout=20000
            )
            await page.wait_for_function(
                "document.body.dataset.studioRoom === 'open' && "
                "!document.getElementById('strip-pin-2').disabled",
                timeout=10000,
            )

            # What goes out is upright too: every layer the encoder sends.
            await sending(page, lambda w, h: h > w)
            # A viewer writes, asks a question and sends hearts, from the live room.
            viewer = await room.join("Ana")
            await viewer.send(type="chat", text="Love the colour!")
            await viewer.wait("chat", lambda m: m["text"] == "Love the colour!")
            await viewer.send(type="chat", text="Is it silk?", question=True)
            await viewer.send(type="heart", count=3)
            await page.wait_for_function(
                "() => { const li = document.querySelector('#studio-feed li:last-child');"
                " return li && li.textContent.includes('Is it silk?') &&"
                " li.classList.contains('is-question'); }",
                timeout=10000,
            )
            assert "Love the colour!" in await page.text_content("#studio-feed")
            await page.wait_for_function(
                "Number(document.body.dataset.studioHearts) >= 3", timeout=5000
            )
            assert await page.text_content("#studio-hearts-count") == "3"
            await page.wait_for_selector("#studio-viewers:not([hidden])", timeout=10000)

            # Before any pin: the strip's first pin button is on screen with the rest.
            unpinned = ["#strip-pin-2" if x == PINNED else x for x in NEEDED]
            assert await on_screen(page, unpinned) == {}
            assert await page.text_content("#go-live") == "End show"

            # One tap pins a product for the viewers; the pinned one is marked.
            await page.tap("#strip-pin-2")
            pinned = await viewer.wait("product", lambda m: (m.get("product") or {}).get("id") == 2)
            assert pinned["product"]["name"]
            await page.wait_for_function("document.body.dataset.studioPinned === '2'")
            assert await page.get_attribute("#strip-pin-2", "aria-pressed") == "true"
            assert await page.get_attribute("#strip-pin-3", "aria-pressed") == "false"
            assert await page.text_content("#strip-pin-2 .strip-label") == "Pinned"
            # A tap on the pinned one unpins it; another tap pins another.
            await page.tap("#strip-pin-2")
            await viewer.wait("product", lambda m: m.get("product") is None)
            await page.wait_for_function("document.body.dataset.studioPinned === ''")
            await page.tap("#strip-pin-3")
            await viewer.wait("product", lambda m: (m.get("product") or {}).get("id") == 3)
            await page.wait_for_function("document.body.dataset.studioPinned === '3'")
            # Everything the host needs during the show, on screen at once.
            assert await on_screen(page, NEEDED) == {}
            assert await page.evaluate(NO_OVERLAP, PAIRS) == []
            await shot(page, tmp_path, "studio-390x844.png")
            assert await axe_violations(page) == []

            # Hearts float up beside the controls, unless the host's phone reduces motion.
            floating = "document.querySelectorAll('#studio-floating span').length"
            await viewer.send(type="heart", count=2)
            await page.wait_for_function(f"{floating} > 0", timeout=5000)
            await page.emulate_media(reduced_motion="reduce")
            before = await page.evaluate(floating)
            await viewer.send(type="heart", count=2)
            await page.wait_for_function(
                "Number(document.body.dataset.studioHearts) >= 7", timeout=5000
            )
            assert await page.evaluate(floating) <= before
            assert not await page.is_visible("#studio-floating")
            assert await page.text_content("#studio-hearts-count") == "7"
            await page.emulate_media(reduced_motion="no-preference")

            # The rest of the moderation is one tap away, in a sheet over the preview.
            assert not await page.is_visible("#moderation")
            await page.tap("#studio-tools")
            await page.wait_for_selector("#moderation", state="visible")
            assert await page.get_attribute("#studio-tools", "aria-expanded") == "true"
            await page.wait_for_function(
                "document.querySelectorAll('#questions li').length === 1", timeout=5000
            )
            await page.tap("#studio-sheet-close")
            await page.wait_for_selector("#moderation", state="hidden")

            # A smaller phone, upright: the same things on screen at once.
            await page.set_viewport_size({"width": 360, "height": 640})
            await page.wait_for_function("innerHeight === 640")
            assert await on_screen(page, NEEDED) == {}, "360x640"
            assert await page.evaluate(NO_OVERLAP, PAIRS) == []
            await shot(page, tmp_path, "studio-360x640.png")

            # Held sideways: the camera turns with the phone, and everything is still there.
            await page.set_viewport_size({"width": 844, "height": 390})
            await page.wait_for_function(
                "document.body.dataset.studioOrientation === 'landscape'", timeout=5000
            )
            await page.wait_for_function(
                "() => { const v = document.getElementById('preview');"
                " return v.videoWidth > v.videoHeight; }",
                timeout=10000,
            )
            assert await on_screen(page, NEEDED) == {}, "844x390"
            assert await page.evaluate(NO_OVERLAP, PAIRS) == []
            await page.tap("#strip-pin-2")
            await viewer.wait("product", lambda m: (m.get("product") or {}).get("id") == 2)
            await page.wait_for_function("document.body.dataset.studioPinned === '2'")
            await shot(page, tmp_path, "studio-844x390.png")
            assert await axe_violations(page) == []
            # Still live, on the same connection, after all that turning, and what goes out
            # turned with the phone.
            assert await page.evaluate("document.body.dataset.studioState") == "live"
            assert await page.evaluate("window.__pcs.length") == 1
            await sending(page, lambda w, h: w > h)
            assert problems == []

            # A desktop: the moderation panel is a side column beside the stage.
            desk = await signed_in_studio(
                browser, server, show, viewport={"width": 1280, "height": 800}
            )
            await desk.wait_for_function(
                "document.body.dataset.studioPinned === '2'", timeout=10000
            )
            stage = await desk.locator(".studio-stage").bounding_box()
            panel = await desk.locator("#moderation").bounding_box()
            assert stage and panel and panel["x"] >= stage["x"] + stage["width"] - 1
            assert not await desk.is_visible("#studio-tools")
            assert await on_screen(desk, ["#preview", PINNED, "#go-live"]) == {}
            await shot(desk, tmp_path, "studio-1280x800.png")
            assert await axe_violations(desk, ".studio-stage") == []

            # End on the phone: the show ends for the room, the strip goes away.
            await page.tap("#go-live")
            await page.wait_for_function(
                "document.body.dataset.studioState === 'ended'", timeout=15000
            )
            await viewer.wait("status", lambda m: m.get("status") == "ended", limit=10)
            assert await page.is_hidden(".studio-strip")
            await desk.wait_for_function(
                "document.body.dataset.studioState === 'ended'", timeout=15000
            )
        finally:
            await room.close()
            await browser.close()
