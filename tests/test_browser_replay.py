"""Browser end to end for the replay page, in headless Chromium on a phone-sized screen:
the replay plays (its time advances), the chat replays with it, tapping a chapter seeks
there and the "shown now" card follows with the product's shop link."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest

from media.finalize import cut
from tests.conftest import LiveServer
from tests.test_browser_live import ARGS, CHROMIUM
from tests.test_replays import write_counter_mp4

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)

STARTED = 1_700_000_000.0


def ended_show_with_replay(server: LiveServer, tmp_path: Path) -> tuple[int, list[str]]:
    """A show that ended, with a 10 s replay, pins at 2 s and 6 s and a message at 1 s."""
    server.cli("seed-demo")
    show = json.loads(
        server.cli("shows", "create", "--title", "Replay", "--starts-at", "2030-01-01T10:00")
    )["id"]
    full = tmp_path / "whole.mp4"
    write_counter_mp4(full, 10.0)
    folder = server.data_dir / "replays"
    folder.mkdir(parents=True, exist_ok=True)
    made = cut(full, folder / f"show-{show}.mp4", folder / f"show-{show}.jpg", 0.0, None)
    now = time.time()
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute(
            "UPDATE shows SET status = 'ended', live_started_at = ?, live_ended_at = ? "
            "WHERE id = ?",
            (int(STARTED), int(STARTED + 10), show),
        )
        conn.executemany(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            [(show, 1, 0), (show, 2, 1)],
        )
        conn.executemany(
            "INSERT INTO show_pins (show_id, product_id, pinned_at) VALUES (?, ?, ?)",
            [(show, 1, STARTED + 2), (show, 2, STARTED + 6)],
        )
        conn.execute(
            "INSERT INTO chat_messages (show_id, viewer, name, text, created_at) "
            "VALUES (?, 'v_x', 'Ana', '<b>hello</b> from the live', ?)",
            (show, STARTED + 1),
        )
        conn.execute(
            "INSERT INTO replays (show_id, status, duration, full_duration, size, width, "
            "height, published, timeline, created_at, updated_at) "
            "VALUES (?, 'ready', ?, ?, ?, 320, 180, 1, ?, ?, ?)",
            (show, made.duration, made.duration, made.size, f"[[{STARTED}, 0, 10]]", now, now),
        )
        names = [r[0] for r in conn.execute("SELECT name FROM products WHERE id IN (1, 2)")]
    return show, names


async def test_replay_plays_and_chapters_seek(live_server: LiveServer, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    show, names = ended_show_with_replay(live_server, tmp_path)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{live_server.url}/shows/{show}")
            video = page.locator("video#replay")
            await video.wait_for()
            # It plays: its time advances.
            await page.evaluate(
                "() => { const v = document.getElementById('replay');"
                " v.muted = true; return v.play(); }"
            )
            await page.wait_for_function(
                "() => document.getElementById('replay').currentTime > 1.2", timeout=15000
            )
            # The chat replays with it, as text.
            await page.wait_for_function("() => document.body.dataset.replayChat === '1'")
            message = page.locator("#chat-messages .msg-text").first
            assert await message.text_content() == "<b>hello</b> from the live"
            assert await page.locator("#chat-messages b").count() == 0
            # Tapping the second chapter seeks to 6 s and shows its product.
            await page.locator("#chapters li.chapter").nth(1).locator("button").click()
            await page.wait_for_function(
                "() => { const t = document.getElementById('replay').currentTime;"
                " return t >= 6 && t < 9; }",
                timeout=10000,
            )
            await page.wait_for_function("() => document.body.dataset.replayChapter === '1'")
            card = page.locator("#replay-now")
            assert await card.is_visible()
            assert await page.locator("#now-name").text_content() in names
            href = await page.locator("#now-cart, #now-details").first.get_attribute("href")
            assert href and f"utm_campaign=show-{show}" in href
            # The first chapter seeks back.
            await page.locator("#chapters li.chapter").nth(0).locator("button").click()
            await page.wait_for_function(
                "() => { const t = document.getElementById('replay').currentTime;"
                " return t >= 2 && t < 5.5; }",
                timeout=10000,
            )
            await page.wait_for_function("() => document.body.dataset.replayChapter === '0'")
        finally:
            await browser.close()
    # The page reported that the replay was watched.
    for _ in range(50):
        with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
            kinds = {
                k for (k,) in conn.execute("SELECT kind FROM events WHERE show_id = ?", (show,))
            }
        if "replay_view" in kinds:
            break
        await asyncio.sleep(0.1)
    assert "replay_view" in kinds
