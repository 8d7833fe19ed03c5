"""Browser end to end: a show page whose room socket is refused (its address already holds
the room's sockets: the server answers the upgrade with 429), and one in a browser
without WebSocket, read the room's feed and send by POST by themselves (web/static/js/
room.js, chat/feed.js), and still show and send chat and hearts: a socket viewer sees
theirs and they see the socket viewer's, in order; a page goes back to its socket when it
can, and to the feed again when its video goes over HLS, losing and repeating nothing."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_room import Room

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)

NO_WEBSOCKET = "delete window.WebSocket;"


@pytest.fixture
def one_socket(tmp_path: Path) -> Iterator[LiveServer]:
    """A server where an address holds one socket of a room: the test's own."""
    server = launch(
        tmp_path / "data", tmp_path / "server.log", {"VITRINE_LIMITS_ROOM_SOCKETS_PER_ADDRESS": "1"}
    )
    yield server
    stop(server)


async def test_refused_pages_chat_and_heart_over_the_feed(one_socket: LiveServer) -> None:
    from playwright.async_api import async_playwright

    server = one_socket
    show = json.loads(
        server.cli("shows", "create", "--title", "Feed page", "--starts-at", "2030-01-01T10:00")
    )["id"]
    room = Room(server, show)
    ana = await room.join("Ana")  # the address's one socket
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pages = []
            for script in (None, NO_WEBSOCKET):
                ctx = await browser.new_context(
                    viewport={"width": 390, "height": 844},
                    is_mobile=True,
                    has_touch=True,
                    bypass_csp=True,
                )
                if script:
                    await ctx.add_init_script(script)
                page = await ctx.new_page()
                await page.goto(f"{server.url}/shows/{show}")
                await page.wait_for_function(
                    "document.body.dataset.roomPath === 'feed'"
                    " && document.body.dataset.roomState === 'open'",
                    timeout=20000,
                )
                pages.append(page)
            assert (await ana.wait("viewers", lambda m: m["count"] == 3))["count"] == 3

            # The socket viewer's chat and hearts reach both pages.
            await ana.send(type="chat", text="hello from the socket")
            await ana.send(type="heart", count=3)
            for page in pages:
                await page.wait_for_function(
                    "[...document.querySelectorAll('#chat-messages li')]"
                    ".some(li => li.textContent.includes('hello from the socket'))",
                    timeout=10000,
                )
                await page.wait_for_function(
                    "document.querySelectorAll('#hearts .float-heart').length > 0",
                    timeout=10000,
                )

            # Each page chats (choosing a name first) and sends a heart, through POSTs.
            for i, page in enumerate(pages):
                await page.fill("#chat-input", f"hello from feed page {i}")
                await page.click("#chat-send")
                await page.wait_for_selector("#name-form:not([hidden])", timeout=5000)
                await page.fill("#name-input", f"Feed{i}")
                await page.click("#name-save")
                await ana.wait("chat", lambda m, i=i: m["text"] == f"hello from feed page {i}")
                ana.messages.clear()
                await page.tap("#heart")
                await ana.wait("hearts")
            # Both pages show every message once, in order, with the socket's.
            expected = ["hello from the socket", "hello from feed page 0", "hello from feed page 1"]
            for page in pages:
                await page.wait_for_function(
                    f"document.querySelectorAll('#chat-messages li').length >= {len(expected)}",
                    timeout=10000,
                )
                await asyncio.sleep(0.5)
                texts = await page.eval_on_selector_all(
                    "#chat-messages li .msg-text", "els => els.map(e => e.textContent)"
                )
                assert texts == expected
                assert await page.evaluate("document.body.dataset.roomPath") == "feed"

            # The address's socket is free again: the first page goes back to a socket when
            # it tries (the browser says it is online again), and loses nothing on the way.
            await ana.close()
            bo = await room.join("Bo", address="127.0.0.2")
            await bo.send(type="chat", text="before the switch")
            await pages[0].evaluate("window.dispatchEvent(new Event('online'))")
            await pages[0].wait_for_function(
                "document.body.dataset.roomPath === 'socket'"
                " && document.body.dataset.roomState === 'open'",
                timeout=10000,
            )
            await bo.send(type="chat", text="after the switch")
            # Its video going over HLS takes it to the feed again.
            await pages[0].evaluate(
                "document.body.dataset.playerPath = 'hls';"
                "document.dispatchEvent(new CustomEvent('vitrine:path'))"
            )
            await pages[0].wait_for_function(
                "document.body.dataset.roomPath === 'feed'"
                " && document.body.dataset.roomState === 'open'",
                timeout=10000,
            )
            await bo.send(type="chat", text="over the feed again")
            expected += ["before the switch", "after the switch", "over the feed again"]
            for page in pages:
                await page.wait_for_function(
                    "[...document.querySelectorAll('#chat-messages li')]"
                    ".some(li => li.textContent.includes('over the feed again'))",
                    timeout=10000,
                )
                await asyncio.sleep(0.5)
                texts = await page.eval_on_selector_all(
                    "#chat-messages li .msg-text", "els => els.map(e => e.textContent)"
                )
                assert texts == expected
        finally:
            await browser.close()
            await room.close()
