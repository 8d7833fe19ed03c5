"""Polls, giveaways and single-use codes as pure parts, and what their store keeps
(appliance/engagement). The room protocol around them: tests/test_room_engagement.py."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.engagement import giveaways
from appliance.engagement.codes import CodePool, parse_codes
from appliance.engagement.giveaways import Giveaway, entrants_digest, pick
from appliance.engagement.polls import Poll
from appliance.engagement.store import EngagementStore
from appliance.kpis.events import EventLog
from appliance.services import Services

# The chi-square statistic of 8 equally likely outcomes has 7 degrees of freedom; a fair
# draw exceeds 29.88 once in 10,000 runs.
CHI2_7_LIMIT = 29.88


def chi_square(counts: Counter[str], entrants: list[str], draws: int) -> float:
    expected = draws / len(entrants)
    return sum((counts[e] - expected) ** 2 / expected for e in entrants)


def test_every_entrant_wins_about_equally_often_and_only_entrants_win() -> None:
    entrants = {f"v_{n:02d}": f"Viewer {n}" for n in range(8)}
    draws = 16_000
    wins: Counter[str] = Counter()
    for _ in range(draws):
        found = giveaways.draw(entrants, 1, 60)
        assert found is not None
        wins[found.viewer] += 1
        assert found.entrants == 8
    assert set(wins) <= set(entrants)  # nobody outside the entrants
    assert chi_square(wins, list(entrants), draws) < CHI2_7_LIMIT
    # The test can fail: a pick that favours the first entrant by 10% is caught.
    skewed = Counter({e: draws // 8 for e in entrants})
    skewed["v_00"] += draws // 80
    skewed["v_07"] -= draws // 80
    assert chi_square(skewed, list(entrants), draws) > CHI2_7_LIMIT


def test_a_draw_can_be_checked_from_its_seed() -> None:
    entrants = {"b": "Bea", "a": "Ana", "c": "Cy"}
    found = giveaways.draw(entrants, 1, 60)
    assert found is not None
    assert hashlib.sha256(found.seed).hexdigest() == found.seed_hash
    order = sorted(entrants)
    assert entrants_digest(order).hex() == found.entrants_hash
    assert order[pick(order, found.seed)] == found.viewer
    assert giveaways.draw({}, 1, 60) is None


def test_a_second_win_in_the_show_is_impossible() -> None:
    show_winners: set[str] = set()
    for number in range(20):
        giveaway = Giveaway(number, "Scarf", "all")
        for viewer in ("a", "b", "c"):
            giveaway.enter(viewer, viewer.upper(), "")
        found = giveaway.pick(show_winners)
        if number < 3:
            assert found is not None and found.viewer not in show_winners
            show_winners.add(found.viewer)
        else:
            assert found is None  # all three have won once
    assert show_winners == {"a", "b", "c"}


def test_a_lapsed_winner_is_left_out_of_the_redraw() -> None:
    giveaway = Giveaway(1, "Scarf", "all", claim_seconds=30)
    giveaway.enter("a", "A", "10.0.0.1")
    giveaway.enter("b", "B", "10.0.0.2")
    assert not giveaway.enter("c", "C", "10.0.0.2")  # one entry per address
    first = giveaway.pick(set())
    assert first is not None and not giveaway.lapsed()
    assert giveaway.lapsed(time.time() + 31)
    giveaway.left_out.add(first.viewer)
    second = giveaway.pick(set())
    assert second is not None and second.viewer != first.viewer and second.number == 2
    giveaway.left_out.add(second.viewer)
    assert giveaway.pick(set()) is None
    assert giveaway.message(7)["winner"] is None


def test_the_winner_is_shown_by_a_public_id_never_the_viewer_cookie() -> None:
    giveaway = Giveaway(1, "Scarf", "all")
    giveaway.enter("v_secret", "Ana", "")
    giveaway.pick(set())
    winner = giveaway.message(7)["winner"]
    assert winner == {"viewer": giveaways.public_id(7, "v_secret"), "name": "Ana"}
    assert "v_secret" not in str(giveaway.message(7))


def test_poll_counts_one_vote_per_viewer_and_address() -> None:
    poll = Poll(1, "Which colour?", ["Red", "Blue"], time.time() + 30, correct=1)
    assert poll.vote("a", "10.0.0.1", 0)
    assert not poll.vote("a", "10.0.0.9", 1)  # same viewer
    assert not poll.vote("b", "10.0.0.1", 1)  # same address, cookie dropped
    assert poll.vote("c", "", 1)
    assert poll.counts == [1, 1]
    assert "correct" not in poll.message()  # not before it closes
    assert poll.due(10.0) and poll.sent_at < 0
    poll.sent_at, poll.dirty = 10.0, True
    assert not poll.due(10.5)  # at most once a second while open
    assert poll.due(11.0)
    poll.close()
    assert poll.due(11.1) and poll.message()["correct"] == 1
    assert poll.right() == {"c"}
    assert not poll.vote("d", "", 0)


def test_codes_are_parsed_strictly() -> None:
    assert parse_codes(["A1", "B-2"]) == ["A1", "B-2"]
    assert parse_codes(["A1", "A1"]) is None
    assert parse_codes(["bad code"]) is None
    assert parse_codes([]) is None
    assert parse_codes("A1") is None


async def test_concurrent_claims_never_get_the_same_code() -> None:
    codes = [f"CODE{n:04d}" for n in range(300)]
    pool = CodePool(codes)

    async def claim(n: int) -> str | None:
        await asyncio.sleep(0)
        return pool.take(f"viewer{n}")

    given = await asyncio.gather(*(claim(n) for n in range(400)))
    taken = [c for c in given if c is not None]
    assert len(taken) == 300 and len(set(taken)) == 300 and set(taken) == set(codes)
    assert given.count(None) == 100 and pool.left == 0
    assert pool.add(["CODE0001", "NEW1"]) == 1  # a code already known is not added again
    assert pool.take("late") == "NEW1"


async def test_winners_contacts_are_deleted_after_the_retention_period(
    services: Services,
) -> None:
    db = services.db
    show = await db.execute(
        "INSERT INTO shows (title, starts_at, stream_key, status, created_at, updated_at) "
        "VALUES ('S', 0, 'k', 'live', 0, 0)"
    )
    store = EngagementStore(db, contact_days=30)
    store.next_giveaway = 1
    giveaway = Giveaway(store.new_giveaway_id(), "Scarf", "all")
    giveaway.enter("v1", "Ana", "")
    store.giveaway_started(show, giveaway, None)
    found = giveaway.pick(set())
    assert found is not None
    store.drawn(giveaway, found)
    store.claimed(show, giveaway, found, "ana@example.com")
    await store.flush()
    row = await db.fetchone("SELECT * FROM giveaway_contacts")
    assert row is not None and row["email"] == "ana@example.com"
    assert row["delete_after"] - row["created_at"] == 30 * 86400
    assert await store.forget_contacts(time.time() + 29 * 86400) == 0
    assert await store.forget_contacts(time.time() + 31 * 86400) == 1
    assert await db.fetchone("SELECT * FROM giveaway_contacts") is None
    draw = await db.fetchone("SELECT * FROM giveaway_draws")
    assert draw is not None and draw["seed_hash"] == found.seed_hash
    assert draw["claimed_at"] is not None
    # The email is nowhere in the event log.
    assert await db.fetchval("SELECT COUNT(*) FROM events WHERE props LIKE '%ana@%'") == 0


def test_an_unclaimed_prize_is_redrawn_by_the_room_tick() -> None:
    import dataclasses
    import json

    from babel.support import NullTranslations

    from appliance.room.hub import Client
    from appliance.room.hub import Room as LiveRoom
    from appliance.room.wire import QueuedOutlet

    room = LiveRoom(1, "live", None)
    staff = Client(viewer="v_staff", address="s", tr=NullTranslations(), staff_user=1)
    people = [
        Client(viewer=f"v_{n}", address=f"10.0.0.{n}", tr=NullTranslations(), name=f"P{n}")
        for n in range(2)
    ]
    for client in (staff, *people):
        client.said_hello = True
        room.clients.add(client)
    giveaway = Giveaway(1, "Scarf", "all", claim_seconds=30)
    for client in people:
        giveaway.enter(client.viewer, client.name or "", client.address)
    room.engagement.giveaway = giveaway
    first = room.engagement.draw(giveaway)
    assert first is not None and room.engagement.winners == {first.viewer}
    room.tick(1000.0)
    assert not giveaway.lapsed()
    # The claim time passes without a claim: the next tick draws the other entrant.
    giveaway.draws[-1] = dataclasses.replace(first, claim_until=time.time() - 1)
    room.tick(1001.0)
    second = giveaway.current
    assert second is not None and second.number == 2 and second.viewer != first.viewer
    assert room.engagement.winners == {second.viewer}  # the lapsed one did not win

    def sent(client: Client) -> list[dict[str, object]]:
        outlet = client.outlet
        assert isinstance(outlet, QueuedOutlet)
        out: list[dict[str, object]] = []
        while not outlet.queue.empty():
            text = outlet.queue.get_nowait()
            assert text is not None
            out.extend(json.loads(text))
        return out

    to_staff = sent(staff)
    assert any(m["type"] == "giveaway_draw" and m["draw"] == 2 for m in to_staff)
    winner = next(c for c in people if c.viewer == second.viewer)
    assert any(m["type"] == "prize_won" for m in sent(winner))
    last = [m for m in to_staff if m["type"] == "giveaway"][-1]
    assert last["winner"] == {"viewer": giveaways.public_id(1, second.viewer), "name": second.name}
    # The second winner lets it lapse too: nobody is left, staff are told.
    giveaway.draws[-1] = dataclasses.replace(second, claim_until=time.time() - 1)
    room.tick(1002.0)
    assert room.engagement.winners == set() and giveaway.message(1)["winner"] is None
    assert any(m.get("code") == "no_entrants" for m in sent(staff))
    room.tick(1003.0)  # said once, not at every tick
    assert not any(m.get("code") == "no_entrants" for m in sent(staff))


def test_kpis_count_poll_participants_and_their_rate() -> None:
    from appliance.kpis.engine import compute

    def ev(ts: float, viewer: str, kind: str, **props: object) -> dict[str, object]:
        return {"ts": ts, "viewer": viewer, "kind": kind, "props": props}

    events = [ev(0, v, "join") for v in ("a", "b", "c", "d")]
    events += [ev(t, v, "heartbeat") for t in (15, 30, 45) for v in ("a", "b", "c", "d")]
    events += [
        ev(10, "a", "vote", poll=1),
        ev(20, "a", "vote", poll=2),
        ev(20, "b", "vote", poll=2),
        ev(25, "b", "giveaway_entry", giveaway=1),
        ev(500, "c", "vote", poll=3),  # after the live: not counted
    ]
    k = compute(events, 0, 60)
    assert k["viewers"] == 4
    assert k["poll_votes"] == 3 and k["poll_participants"] == 2
    assert k["participation_rate"] == 0.5
    assert k["giveaway_entries"] == 1
    assert compute([], 0, 60)["participation_rate"] == 0


async def test_the_replay_shows_polls_answers_and_live_answer_chapters(
    client: QuartClient, services: Services
) -> None:
    from tests.test_replays import STARTED, make_replay

    show_id = await make_replay(services)
    db = services.db
    await db.execute(
        "INSERT INTO polls (show_id, question, options, correct, counts, started_at, ends_at, "
        "closed_at) VALUES (?, 'Which hat?', '[\"Straw\", \"Felt\"]', 0, '[3, 1]', ?, ?, ?)",
        (show_id, STARTED + 1.0, STARTED + 61.0, STARTED + 4.0),
    )
    await db.execute(
        "INSERT INTO chat_messages (show_id, viewer, name, text, question, answered, answer, "
        "answered_live_at, created_at) VALUES (?, 'v_q', 'Bea', 'Is it washable?', 1, 1, "
        "'Yes, by hand', ?, ?)",
        (show_id, STARTED + 7.0, STARTED + 2.0),
    )
    chat = await (await client.get(f"/api/replays/{show_id}/chat?from=0&to=5")).get_json()
    [poll] = chat["polls"]
    assert poll["t"] == 4.0 and poll["counts"] == [3, 1] and poll["correct"] == 0
    assert poll["options"] == ["Straw", "Felt"]
    asked = next(m for m in chat["messages"] if m["text"] == "Is it washable?")
    assert asked["t"] == 2.0 and asked["answer"] == "Yes, by hand"
    later = await (await client.get(f"/api/replays/{show_id}/chat?from=5&to=30")).get_json()
    assert later["polls"] == []
    chapters = await (await client.get(f"/api/replays/{show_id}/chapters")).get_json()
    assert chapters["questions"] == [
        {"t": 7.0, "id": asked["id"], "name": "Bea", "text": "Is it washable?"}
    ]
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert 'id="answer-chapters"' in page and 'data-t="7.0"' in page


async def test_the_kpi_page_and_csv_show_poll_participation(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    from tests.test_kpi_dashboard import START, ended_show, fill

    show = await ended_show(services)
    log: EventLog = app.extensions["vitrine.events"]
    log.add(show, START + 50, "v_one_0000000000001", "vote", {"poll": 1})
    log.add(show, START + 60, "v_two_0000000000002", "giveaway_entry", {"giveaway": 1})
    await fill(app, services, show)
    page = await (await client.get(f"/admin/shows/{show}/kpis")).get_data(as_text=True)
    assert "Poll participation" in page and "Giveaway entries" in page
    data = await (await client.get(f"/api/kpis/shows/{show}")).get_json()
    figures = data.get("kpis", data)
    assert figures["poll_participants"] == 1 and figures["participation_rate"] == 0.5
    assert figures["giveaway_entries"] == 1


def test_the_contacts_retention_is_a_setting(tmp_path: Path) -> None:
    from appliance.app import create_app
    from appliance.config import ConfigError, load_config

    environ = {"VITRINE_ENGAGEMENT_CONTACT_DAYS": "7"}
    config = load_config(environ=environ, overrides={"storage.data_dir": str(tmp_path)})
    assert config.engagement.contact_days == 7.0
    rooms = create_app(config).extensions["vitrine.rooms"]
    assert rooms.engagement.store.contact_days == 7.0
    with pytest.raises(ConfigError, match=r"engagement\.contact_days"):
        load_config(environ={"VITRINE_ENGAGEMENT_CONTACT_DAYS": "0"})
