"""Browser end to end for polls, giveaways and answers on a phone (390x844): staff start a
quiz and a giveaway and answer a question from the admin show page's moderation panel; a
viewer votes with one tap, enters with one tap, wins, leaves an email, and sees the
written answer under their question. The page keeps to the phone's width (screenshot
kept as tests' artefact in the test's temporary directory)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, LiveServer
from tests.test_browser_live import ARGS, CHROMIUM

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)

FITS = """(ids) => ids.every((id) => {
  const r = document.getElementById(id).getBoundingClientRect();
  return r.width > 0 && r.left >= 0 && r.right <= window.innerWidth + 0.5;
})"""


async def test_a_viewer_on_a_phone_votes_enters_wins_and_reads_an_answer(
    live_server: LiveServer, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    live_server.cli_input(
        ["create-admin", "--email", "admin@example.com", "--name", "Ada", "--password-stdin"],
        PASSWORD,
    )
    show = json.loads(
        live_server.cli(
            "shows", "create", "--title", "Quiz night", "--starts-at", "2030-01-01T10:00"
        )
    )
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            phone = await browser.new_context(
                viewport={"width": 390, "height": 844},
                is_mobile=True,
                has_touch=True,
                bypass_csp=True,  # wait_for_function evaluates strings
            )
            viewer = await phone.new_page()
            await viewer.goto(f"{live_server.url}/shows/{show['id']}")
            await viewer.wait_for_function(
                "document.body.dataset.roomState === 'open'", timeout=15000
            )
            # Staff on a phone too: a host runs the show from the studio on theirs.
            staff_ctx = await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, bypass_csp=True
            )
            staff = await staff_ctx.new_page()
            await staff.goto(f"{live_server.url}/login?next=/admin/shows/{show['id']}")
            await staff.fill("#f-email", "admin@example.com")
            await staff.fill("#f-password", PASSWORD)
            await staff.click("button[type=submit]")
            await staff.wait_for_function(
                "document.body.dataset.roomStaff === 'true'", timeout=15000
            )

            assert await staff.evaluate(FITS, ["poll-form", "giveaway-form", "offer-codes"])
            await staff.locator("#poll-form").screenshot(path=str(tmp_path / "staff-poll.png"))
            # A quiz: the viewer answers with one tap and sees the bars.
            await staff.fill("#poll-question-input", "Which fabric is the scarf?")
            await staff.fill("#poll-option-0", "Silk")
            await staff.fill("#poll-option-1", "Wool")
            await staff.fill("#poll-option-2", "Linen")
            await staff.select_option("#poll-seconds", "60")
            await staff.select_option("#poll-correct", "0")
            await staff.click("#poll-start")
            await viewer.wait_for_selector("#poll:not([hidden])", timeout=5000)
            assert await viewer.text_content("#poll-question") == "Which fabric is the scarf?"
            await viewer.tap("#poll-options button[data-option='0']")
            await staff.wait_for_function(
                "document.getElementById('mod-poll-foot').textContent.startsWith('1 ')",
                timeout=5000,
            )
            assert await viewer.locator("#poll .poll-pct").first.text_content() == "100 %"
            assert await viewer.evaluate(FITS, ["poll", "poll-options", "chat"])
            await viewer.screenshot(path=str(tmp_path / "poll-390x844.png"))
            await staff.click("#poll-end")
            await viewer.wait_for_selector("#poll-options .is-correct", timeout=5000)

            # A giveaway for those who found the answer: one tap to enter, then the win.
            await staff.fill("#giveaway-prize-input", "A silk scarf")
            await staff.select_option("#giveaway-entrants", "quiz")
            await staff.click("#giveaway-start")
            await viewer.wait_for_selector("#giveaway-enter:not([hidden])", timeout=5000)
            await viewer.tap("#giveaway-enter")
            await viewer.wait_for_selector("#giveaway-enter", state="hidden", timeout=5000)
            await staff.wait_for_function(
                "document.getElementById('mod-giveaway-state').textContent.startsWith('1 ')",
                timeout=5000,
            )
            await staff.click("#giveaway-draw")
            await staff.wait_for_selector("#mod-giveaway-proof:not([hidden])", timeout=5000)
            assert "1" in await staff.text_content("#mod-giveaway-proof")
            await viewer.wait_for_selector("#giveaway-claim:not([hidden])", timeout=5000)
            assert await viewer.evaluate(FITS, ["giveaway", "giveaway-claim", "giveaway-email"])
            await viewer.screenshot(path=str(tmp_path / "giveaway-390x844.png"))
            await viewer.fill("#giveaway-email", "ana@example.com")
            await viewer.tap("#giveaway-claim-send")
            await viewer.wait_for_selector("#giveaway-claim", state="hidden", timeout=5000)

            # A question answered in writing shows the answer under it.
            await viewer.fill("#chat-input", "Does it come in blue?")
            await viewer.check("#chat-question")
            await viewer.click("#chat-send")
            await viewer.wait_for_selector("#name-form:not([hidden])", timeout=5000)
            await viewer.fill("#name-input", "Ana")
            await viewer.click("#name-save")
            await staff.wait_for_selector("#questions li", timeout=10000)
            await staff.fill("#questions li .mod-answer-input", "Yes, <i>navy</i> too")
            await staff.click("#questions li form button")
            await viewer.wait_for_selector("#chat-messages .msg-answer", timeout=5000)
            assert await viewer.text_content(".msg-answer") == "Yes, <i>navy</i> too"
            assert await viewer.locator(".msg-answer i").count() == 0
        finally:
            await browser.close()


async def test_the_replay_shows_a_poll_result_an_answer_and_a_live_answer_chapter(
    live_server: LiveServer, tmp_path: Path
) -> None:
    import sqlite3

    from playwright.async_api import async_playwright

    from tests.test_browser_replay import STARTED, ended_show_with_replay

    show, _names = ended_show_with_replay(live_server, tmp_path)
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute(
            "INSERT INTO chat_messages (show_id, viewer, name, text, question, answered, "
            "answer, answered_live_at, created_at) VALUES (?, 'v_q', 'Bea', 'Washable?', 1, 1, "
            "'Yes, <i>by hand</i>', ?, ?)",
            (show, STARTED + 5, STARTED + 1.5),
        )
        conn.execute(
            "INSERT INTO polls (show_id, question, options, correct, counts, started_at, "
            "ends_at, closed_at) VALUES (?, 'Which hat?', '[\"Straw\", \"Felt\"]', 0, "
            "'[3, 1]', ?, ?, ?)",
            (show, STARTED + 0.5, STARTED + 60, STARTED + 2.5),
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"]
        )
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{live_server.url}/shows/{show}")
            await page.locator("video#replay").wait_for()
            await page.evaluate(
                "() => { const v = document.getElementById('replay');"
                " v.muted = true; return v.play(); }"
            )
            await page.wait_for_function(
                "() => document.body.dataset.replayChat === '3'", timeout=15000
            )
            assert await page.text_content("#chat-messages .msg-answer") == "Yes, <i>by hand</i>"
            assert await page.locator("#chat-messages i").count() == 0
            result = await page.text_content("#chat-messages .poll-result")
            assert result is not None and "Which hat?" in result and "Straw — 75 %" in result
            await page.locator("#answer-chapters li button").click()
            await page.wait_for_function(
                "() => { const t = document.getElementById('replay').currentTime;"
                " return t >= 5 && t < 8; }",
                timeout=10000,
            )
        finally:
            await browser.close()
