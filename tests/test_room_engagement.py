"""Polls, quizzes, giveaways, single-use codes and answers in the live room (issue 16,
docs/protocol.md), over real websockets against the real server on a real database."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.test_room import Peer, Room, staff_cookie
from tests.test_room_moderation import new_show, staff_cookie_again


@pytest.fixture
async def room(live_server: LiveServer) -> AsyncIterator[Room]:
    r = Room(live_server, new_show(live_server))
    yield r
    await r.close()


def rows(server: LiveServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(server.data_dir / "vitrine.sqlite3") as conn:
        return conn.execute(sql, params).fetchall()


async def eventually(server: LiveServer, sql: str, *params: Any, count: int = 1) -> list[Any]:
    """Rows of a query once at least `count` are there (the room writes once a second)."""
    found: list[Any] = []
    for _ in range(60):
        found = rows(server, sql, *params)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{sql}: {found}")


async def viewers(room: Room, n: int, first: int = 0) -> list[Peer]:
    """Viewers each on their own address, as people on their own phones."""
    return [
        await room.join(f"V{i}", viewer=f"v_engage_viewer_{i:04d}", address=f"127.0.0.{i + 2}")
        for i in range(first, first + n)
    ]


async def notice(peer: Peer, code: str) -> None:
    await peer.wait("notice", lambda m: m["code"] == code)


async def test_a_quiz_counts_one_vote_each_and_sends_results_at_most_once_a_second(
    room: Room, live_server: LiveServer
) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    people = await viewers(room, 6)
    await mod.send(
        type="start_poll",
        question="Which is silk?",
        options=["Scarf", "Bag", "Belt"],
        seconds=60,
        correct=0,
    )
    started = await people[0].wait("poll")
    assert started["open"] and started["counts"] == [0, 0, 0] and "correct" not in started
    assert started["quiz"] is True and started["options"] == ["Scarf", "Bag", "Belt"]
    began = time.monotonic()
    for n, peer in enumerate(people):
        await peer.send(type="vote", option=0 if n < 4 else 1)
    await people[0].wait("poll", lambda m: m["counts"] == [4, 2, 0])
    elapsed = time.monotonic() - began
    updates = [m for m in people[0].of("poll") if m["open"]]
    # Six votes within a few ticks: the start and at most one update per second since.
    assert len(updates) <= 2 + int(elapsed), updates

    await people[0].send(type="vote", option=1)  # a second vote
    await notice(people[0], "already_voted")
    again = await room.join("Again", viewer="v_engage_other_cookie", address="127.0.0.2")
    await again.send(type="vote", option=2)  # same address, new cookie
    await notice(again, "already_voted")
    await mod.send(type="vote", option=0)
    await notice(mod, "not_allowed")
    await people[0].send(type="vote", option=7)
    await notice(people[0], "bad_message")

    late = await room.join("Late", viewer="v_engage_late_00001", address="127.0.0.40")
    assert late.of("state")[0]["poll"]["counts"] == [4, 2, 0]  # joins to the live bars
    await mod.send(type="end_poll")
    closed = await people[5].wait("poll", lambda m: not m["open"])
    assert closed["correct"] == 0 and closed["counts"] == [4, 2, 0]
    await late.send(type="vote", option=0)
    await notice(late, "poll_closed")

    stored = await eventually(
        live_server,
        "SELECT counts, closed_at FROM polls WHERE show_id = ? AND closed_at IS NOT NULL",
        room.show_id,
    )
    assert stored[0][0] == "[4, 2, 0]"
    votes = await eventually(live_server, "SELECT viewer FROM poll_votes", count=6)
    assert len(votes) == 6
    events = await eventually(
        live_server,
        "SELECT viewer FROM events WHERE show_id = ? AND kind = 'vote'",
        room.show_id,
        count=6,
    )
    assert sorted(v for (v,) in events) == sorted(f"v_engage_viewer_{i:04d}" for i in range(6))


async def test_a_poll_ends_by_itself_and_bad_polls_are_refused(
    room: Room, live_server: LiveServer
) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "admin"))
    [ana] = await viewers(room, 1)
    for bad in (
        {"question": "Q", "options": ["only one"], "seconds": 30},
        {"question": "Q", "options": ["a", "b", "c", "d", "e"], "seconds": 30},
        {"question": "", "options": ["a", "b"], "seconds": 30},
        {"question": "Q", "options": ["a", "b"], "seconds": 1},
        {"question": "Q", "options": ["a", "b"], "seconds": 30, "correct": 2},
        {"question": "Q", "options": ["a", 3], "seconds": 30},
    ):
        mod.messages.clear()
        await mod.send(type="start_poll", **bad)
        await notice(mod, "bad_message")
    await ana.send(type="start_poll", question="Mine?", options=["a", "b"], seconds=30)
    await notice(ana, "not_allowed")
    await mod.send(type="start_poll", question="Red or blue?", options=["Red", "Blue"], seconds=5)
    await ana.wait("poll", lambda m: m["open"])
    await ana.send(type="vote", option=1)
    closed = await ana.wait("poll", lambda m: not m["open"], limit=8)
    assert closed["counts"] == [0, 1] and closed["correct"] is None


async def test_a_giveaway_for_voters_is_drawn_fairly_claimed_and_won_once(
    room: Room, live_server: LiveServer
) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    people = await viewers(room, 4)
    await mod.send(type="start_poll", question="Q?", options=["a", "b"], seconds=60)
    await people[0].wait("poll")
    for peer in people[:3]:
        await peer.send(type="vote", option=0)
    await people[0].wait("poll", lambda m: sum(m["counts"]) == 3)

    await mod.send(type="start_giveaway", prize="Silk scarf", entrants="voters", claim_seconds=60)
    opened = await people[0].wait("giveaway")
    assert opened["open"] and opened["entrants"] == 0 and opened["winner"] is None
    await people[3].send(type="enter")  # did not vote
    await notice(people[3], "not_eligible")
    for peer in people[:3]:
        await peer.send(type="enter")
        await peer.wait("entered")
    await people[3].wait("giveaway", lambda m: m["entrants"] == 3)
    await people[0].send(type="enter")  # twice: still one entry
    await people[0].wait("entered")
    await people[3].send(type="draw")
    await notice(people[3], "not_allowed")

    await mod.send(type="draw")
    proof = await mod.wait("giveaway_draw")
    assert proof["entrants"] == 3 and len(proof["seed_hash"]) == 64 and proof["draw"] == 1
    await mod.send(type="draw")  # the winner has not claimed yet
    await notice(mod, "claim_pending")
    drawn = await people[3].wait("giveaway", lambda m: m["winner"])
    assert not drawn["open"] and drawn["winner"]["name"] == proof["name"]
    winner = next(p for p in people[:3] if p.of("prize_won"))
    assert [p for p in people if p.of("prize_won")] == [winner]
    viewer_id = winner.of("welcome")[0]["viewer"]
    assert viewer_id not in str(drawn)  # the cookie is never broadcast
    # The draw can be checked: the seed kept with it hashes to what staff saw, and picks
    # the winner among the entrants sorted.
    [(seed, seed_hash, count, won_by)] = await eventually(
        live_server, "SELECT seed, seed_hash, entrants, viewer FROM giveaway_draws"
    )
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == seed_hash == proof["seed_hash"]
    assert count == 3 and won_by == viewer_id

    # The winner reloads the page: told again; staff reconnecting get the proof again.
    again = await room.join(viewer=viewer_id, address=winner.ws.local_address[0])
    assert (await again.wait("prize_won"))["claim_until"] > time.time() + 50
    mod_again = await room.join(cookie=staff_cookie(live_server, "admin"))
    assert (await mod_again.wait("giveaway_draw"))["seed_hash"] == proof["seed_hash"]
    await winner.send(type="claim_prize", email="not an email")
    await notice(winner, "bad_email")
    loser = next(p for p in people[:3] if p is not winner)
    await loser.send(type="claim_prize", email="me@example.com")
    await notice(loser, "not_allowed")
    await winner.send(type="claim_prize", email="winner@example.com")
    await winner.wait("prize_claimed")
    claimed = await mod.wait("giveaway_draw", lambda m: m["claimed"])
    assert claimed["email"] == "winner@example.com"  # the team can deliver the prize
    assert not any("winner@" in str(m) for p in people for m in p.messages)
    contacts = await eventually(live_server, "SELECT email, delete_after FROM giveaway_contacts")
    assert contacts[0][0] == "winner@example.com" and contacts[0][1] > time.time() + 29 * 86400
    assert rows(live_server, "SELECT COUNT(*) FROM events WHERE props LIKE '%winner@%'") == [(0,)]

    # A second giveaway: the winner cannot enter, and cannot be drawn again.
    await mod.send(type="start_giveaway", prize="Bag", entrants="all")
    await people[3].wait("giveaway", lambda m: m["prize"] == "Bag")
    await winner.send(type="enter")
    await notice(winner, "already_won")
    await mod.send(type="draw")
    await notice(mod, "no_entrants")
    for peer in people:
        if peer is not winner:
            await peer.send(type="enter")
    await people[3].wait("giveaway", lambda m: m["prize"] == "Bag" and m["entrants"] == 3)
    twin = await room.join("Twin", viewer="v_engage_twin_000001", address="127.0.0.5")
    await twin.send(type="enter")  # 127.0.0.5 is people[3]'s: one entry per address
    await notice(twin, "already_entered")
    mod.messages.clear()
    await mod.send(type="draw")
    second = await mod.wait("giveaway_draw")
    assert second["entrants"] == 3 and second["name"] != proof["name"]


async def test_single_use_codes_are_never_given_twice_even_to_concurrent_claims(
    room: Room, live_server: LiveServer
) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    people = await viewers(room, 8)
    codes = [f"ONCE{n:03d}" for n in range(5)]
    await mod.send(type="start_offer", minutes=5, codes=codes)
    offer = (await people[0].wait("offer", lambda m: m["offer"]))["offer"]
    assert offer["code"] is None and offer["quantity"] == 5 and offer["remaining"] == 5
    # Eight claims sent at the same moment for five codes.
    await asyncio.gather(*(p.send(type="claim_offer") for p in people))
    got: dict[int, str] = {}
    for n, peer in enumerate(people):
        for _ in range(100):
            if peer.of("offer_code") or any(m["code"] == "offer_gone" for m in peer.of("notice")):
                break
            await asyncio.sleep(0.03)
        if peer.of("offer_code"):
            got[n] = peer.of("offer_code")[0]["code"]
    assert sorted(got.values()) == codes  # each code once, every code given
    await people[0].wait("offer", lambda m: m["offer"] and m["offer"]["remaining"] == 0)
    # Claiming again gives one's own code back, not another.
    first = next(iter(got))
    people[first].messages.clear()
    await people[first].send(type="claim_offer")
    assert (await people[first].wait("offer_code"))["code"] == got[first]
    # More codes pasted while the offer runs.
    await mod.send(type="add_codes", codes=["MORE1", "ONCE000"])
    more = await people[0].wait("offer", lambda m: m["offer"] and m["offer"]["remaining"] == 1)
    assert more["offer"]["quantity"] == 6
    waiting = next(p for n, p in enumerate(people) if n not in got)
    await waiting.send(type="claim_offer")
    assert (await waiting.wait("offer_code"))["code"] == "MORE1"
    stored = await eventually(
        live_server, "SELECT code, viewer FROM offer_codes WHERE viewer IS NOT NULL", count=6
    )
    assert len({c for c, _ in stored}) == 6 and len({v for _, v in stored}) == 6
    for bad in ({"codes": ["has space"]}, {"codes": []}, {"codes": ["A", "A"]}, {}):
        mod.messages.clear()
        await mod.send(type="start_offer", minutes=5, **bad)
        await notice(mod, "bad_message")


async def test_written_and_live_answers_reach_everyone_and_are_kept(
    room: Room, live_server: LiveServer
) -> None:
    mod = await room.join(cookie=staff_cookie(live_server, "moderator", room.show_id))
    [ana, bob] = await viewers(room, 2)
    await ana.send(type="chat", text="Is it silk?", question=True)
    asked = await mod.wait("chat", lambda m: m["text"] == "Is it silk?")
    await bob.send(type="chat", text="Which sizes?", question=True)
    other = await mod.wait("chat", lambda m: m["text"] == "Which sizes?")
    await mod.send(type="answer", id=asked["id"], text="Yes, 100% <b>silk</b>")
    answered = await bob.wait("answered", lambda m: m["id"] == asked["id"])
    assert answered["answer"] == "Yes, 100% <b>silk</b>" and answered["live"] is False
    await mod.send(type="answer", id=other["id"], live=True)
    live = await ana.wait("answered", lambda m: m["id"] == other["id"])
    assert live["answer"] is None and live["live"] is True
    await mod.send(type="answer", id=other["id"], text="x" * 301)
    await notice(mod, "bad_message")
    late = await room.join("Late", viewer="v_engage_late_answer", address="127.0.0.50")
    shown = {m["id"]: m for m in late.of("state")[0]["messages"]}
    assert shown[asked["id"]]["answer"] == "Yes, 100% <b>silk</b>"
    assert late.of("state")[0]["questions"] == []
    kept = await eventually(
        live_server,
        "SELECT answer, answered_live_at IS NOT NULL FROM chat_messages WHERE answered = 1 "
        "ORDER BY id",
        count=2,
    )
    assert kept == [("Yes, 100% <b>silk</b>", 0), (None, 1)]


async def test_voters_and_winners_survive_a_restart(tmp_path: Path) -> None:
    """A giveaway for voters after a restart still knows who voted, and a past winner
    still cannot win again in the same show."""
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        show_id = new_show(server)
        room1 = Room(server, show_id)
        mod = await room1.join(cookie=staff_cookie(server, "admin"))
        [ana, bob] = await viewers(room1, 2)
        await mod.send(type="start_poll", question="Q?", options=["a", "b"], seconds=60)
        await ana.wait("poll")
        await ana.send(type="vote", option=0)
        await bob.send(type="vote", option=1)
        await ana.wait("poll", lambda m: sum(m["counts"]) == 2)
        await mod.send(type="start_giveaway", prize="Hat", entrants="all")
        await ana.wait("giveaway")
        await ana.send(type="enter")
        await ana.wait("entered")
        await mod.send(type="draw")
        await ana.wait("prize_won")
        await room1.close()
    finally:
        stop(server)  # writes what the room holds before it exits
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        room2 = Room(server, show_id)
        mod = await room2.join(cookie=staff_cookie_again(server))
        [ana, bob] = await viewers(room2, 2)
        late = await room2.join("Late", viewer="v_engage_late_restart", address="127.0.0.60")
        await mod.send(type="start_giveaway", prize="Bag", entrants="voters")
        await late.wait("giveaway")
        await late.send(type="enter")
        await notice(late, "not_eligible")  # never voted
        await ana.send(type="enter")
        await notice(ana, "already_won")  # won before the restart
        await bob.send(type="enter")
        await bob.wait("entered")
        await room2.close()
    finally:
        stop(server)


async def test_an_open_poll_and_giveaway_come_back_after_a_restart(tmp_path: Path) -> None:
    """The server stops with a poll and a giveaway open: after the restart, viewers see
    both again, the poll keeps its votes and its end, votes and entries go on, nobody
    votes or enters twice, and the draw is among everyone who entered, before or after."""
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        show_id = new_show(server)
        room1 = Room(server, show_id)
        mod = await room1.join(cookie=staff_cookie(server, "admin"))
        [ana, bob, cat] = await viewers(room1, 3)
        await mod.send(
            type="start_poll", question="Red or blue?", options=["red", "blue"], seconds=600
        )
        first = await ana.wait("poll")
        await ana.send(type="vote", option=0)
        await bob.send(type="vote", option=1)
        await ana.wait("poll", lambda m: m["counts"] == [1, 1])
        await mod.send(type="start_giveaway", prize="Scarf", entrants="all")
        await ana.wait("giveaway")
        await ana.send(type="enter")
        await ana.wait("entered")
        await mod.wait("giveaway", lambda m: m["entrants"] == 1)
        await room1.close()
    finally:
        stop(server)
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        room2 = Room(server, show_id)
        mod = await room2.join(cookie=staff_cookie_again(server))
        [ana, bob, cat] = await viewers(room2, 3)
        state = cat.of("state")[0]
        poll, giveaway = state["poll"], state["giveaway"]
        assert poll["id"] == first["id"] and poll["open"] is True
        assert poll["counts"] == [1, 1] and poll["ends_at"] == first["ends_at"]
        assert giveaway["prize"] == "Scarf" and giveaway["open"] is True
        assert giveaway["entrants"] == 1 and giveaway["winner"] is None
        await ana.send(type="vote", option=1)
        await notice(ana, "already_voted")  # voted before the restart
        await cat.send(type="vote", option=0)
        await cat.wait("poll", lambda m: m["counts"] == [2, 1])
        await ana.send(type="enter")
        await ana.wait("entered")  # already in: told so, not counted twice
        await bob.send(type="enter")
        await bob.wait("entered")
        await mod.wait("giveaway", lambda m: m["entrants"] == 2)
        await mod.send(type="draw")
        proof = await mod.wait("giveaway_draw")
        assert proof["entrants"] == 2 and proof["name"] in ("V0", "V1")
        await mod.send(type="end_poll")
        closed = await cat.wait("poll", lambda m: not m["open"])
        assert closed["counts"] == [2, 1]
        await room2.close()
    finally:
        stop(server)
    entries = rows(
        server,
        "SELECT e.viewer FROM giveaway_entries e JOIN giveaways g ON g.id = e.giveaway_id "
        "WHERE g.show_id = ? ORDER BY e.viewer",
        show_id,
    )
    assert entries == [("v_engage_viewer_0000",), ("v_engage_viewer_0001",)]
    assert rows(server, "SELECT counts FROM polls WHERE id = ?", first["id"]) == [("[2, 1]",)]


async def test_a_poll_whose_time_ran_out_while_down_is_closed_with_its_votes(
    tmp_path: Path,
) -> None:
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        show_id = new_show(server)
        room1 = Room(server, show_id)
        mod = await room1.join(cookie=staff_cookie(server, "admin"))
        [ana, bob] = await viewers(room1, 2)
        await mod.send(type="start_poll", question="Quick?", options=["a", "b"], seconds=5)
        poll = await ana.wait("poll")
        await ana.send(type="vote", option=1)
        await bob.wait("poll", lambda m: m["counts"] == [0, 1])
        await room1.close()
    finally:
        stop(server)
    await asyncio.sleep(max(0.0, poll["ends_at"] + 1 - time.time()))
    server = launch(tmp_path / "data", tmp_path / "server.log")
    try:
        room2 = Room(server, show_id)
        [cat] = await viewers(room2, 1, first=2)
        assert cat.of("state")[0]["poll"] is None  # over: not on screen again
        await cat.send(type="vote", option=0)
        await notice(cat, "poll_closed")
        closed = await eventually(
            server, "SELECT counts FROM polls WHERE id = ? AND closed_at IS NOT NULL", poll["id"]
        )
        assert closed == [("[0, 1]",)]
        await room2.close()
    finally:
        stop(server)
