"""Replays after the show: the clock mapping pins and chat onto the replay, trimming at
keyframes, retention, the replay page and its JSON, and the admin's replay panel, on the
real app with a real SQLite file and real MP4 files."""

from __future__ import annotations

import fractions
import json
import time
from pathlib import Path

import av
import pytest
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.replays.timeline import Timeline
from appliance.services import Services
from appliance.views.admin.replays import parse_time
from media.finalize import cut
from tests.conftest import sign_in
from tests.media_helpers import CounterVideoTrack, read_back

FPS = 30
GOP = 30  # a keyframe every second


def write_counter_mp4(path: Path, seconds: float, first: int = 0) -> None:
    """An H264 + AAC MP4 whose frame n shows the number first + n, a keyframe a second."""
    track = CounterVideoTrack(320, 180, FPS, first)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"g": str(GOP), "keyint_min": str(GOP), "bf": "0", "preset": "ultrafast"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        for n in range(int(seconds * FPS)):
            frame = av.VideoFrame(320, 180, "yuv420p")
            frame.planes[0].update(track._luma(first + n))
            frame.planes[1].update(track._uv)
            frame.planes[2].update(track._uv)
            frame.pts = n
            frame.time_base = fractions.Fraction(1, FPS)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        samples = 1024
        for n in range(int(seconds * 48000 / samples)):
            chunk = av.AudioFrame(format="fltp", layout="stereo", samples=samples)
            for plane in chunk.planes:
                plane.update(bytes(samples * 4))
            chunk.sample_rate = 48000
            chunk.pts = n * samples
            chunk.time_base = fractions.Fraction(1, 48000)
            for packet in audio.encode(chunk):
                out.mux(packet)
        for packet in audio.encode(None):
            out.mux(packet)


def first_and_last(path: Path) -> tuple[int, int, float]:
    """The counters of the first and last frames, and where the video ends (seconds)."""
    counters, times, _, _ = read_back(path)
    return counters[0], counters[-1], times[-1] + 1 / FPS


# -- the clock: wall-clock moments on the replay ------------------------------------------


def test_one_part_maps_with_the_wall_clock() -> None:
    t = Timeline(((1000.0, 0.0, 60.0),), 0.0, 60.0)
    assert t.at(1010.0) == 10.0
    assert t.at(990.0) == 0.0  # chat before the recording began shows at the start
    assert t.at(1059.5) == 59.5
    assert t.at(1060.5) == 60.0  # just after the end: at the end
    assert t.at(1200.0) == 60.0  # while the show was closing
    assert t.walls(0, 30) == [(float("-inf"), 1030.0)]
    assert t.walls(30, 60) == [(1030.0, float("inf"))]


def test_parts_after_a_restart_skip_the_time_the_server_was_down() -> None:
    # Part 1 recorded 1000-1030; the server was down; part 2 recorded 1100-1120.
    t = Timeline(((1000.0, 0.0, 30.0), (1100.0, 30.0, 50.0)), 0.0, 50.0)
    assert t.at(1020.0) == 20.0
    assert t.at(1050.0) is None  # nothing was recorded then
    assert t.at(1105.0) == 35.0
    assert t.walls(25, 40) == [(1025.0, 1030.0), (1100.0, 1110.0)]


def test_a_trim_moves_everything_and_cuts_what_it_removed() -> None:
    # The whole recording was 100 s; the replay now starts at 20 s and lasts 60 s.
    t = Timeline(((1000.0, 0.0, 100.0),), 20.0, 60.0)
    assert t.at(1030.0) == 10.0
    assert t.at(1010.0) is None  # in the cut start
    assert t.at(990.0) is None  # before the recording, with the start cut: gone too
    assert t.at(1095.0) is None  # in the cut end
    assert t.walls(0, 10) == [(1020.0, 1030.0)]


def test_times_typed_by_the_admin() -> None:
    assert parse_time("90") == 90
    assert parse_time("1:30") == 90
    assert parse_time("1:02:03") == 3723
    assert parse_time(" 2:30.5 ") == 150.5
    for bad in ("", "abc", "1:75", "-3", "1::2", "9" * 9):
        assert parse_time(bad) is None, bad


# -- trimming at keyframes, without re-encoding -------------------------------------------


def test_cut_starts_on_the_keyframe_before_the_start(tmp_path: Path) -> None:
    full = tmp_path / "full.mp4"
    write_counter_mp4(full, 8.0, first=100)
    out, poster = tmp_path / "cut.mp4", tmp_path / "cut.jpg"
    made = cut(full, out, poster, 3.5, 6.0)
    # Keyframes are whole seconds: the cut begins at 3 s, on frame 90.
    assert made.start == pytest.approx(3.0, abs=0.01)
    first, last, duration = first_and_last(out)
    assert first == 100 + 90
    assert last == 100 + 6 * FPS - 1
    assert duration == pytest.approx(3.0, abs=0.1)
    assert made.duration == pytest.approx(3.0, abs=0.1)
    assert poster.stat().st_size > 0
    with av.open(str(out)) as src:
        assert src.streams.video[0].codec_context.name == "h264"
        assert src.streams.audio, "the audio is kept"
        pts = [p.pts for p in src.demux(src.streams.video[0]) if p.size]
    assert pts == sorted(pts) and pts[0] == 0


def test_cut_to_the_end(tmp_path: Path) -> None:
    full = tmp_path / "full.mp4"
    write_counter_mp4(full, 4.0)
    made = cut(full, tmp_path / "c.mp4", tmp_path / "c.jpg", 0.0, None)
    first, last, _ = first_and_last(tmp_path / "c.mp4")
    assert (first, last) == (0, 4 * FPS - 1)
    assert made.start == 0.0


# -- the app: a replay with pins and chat ---------------------------------------------------

STARTED = 1_700_000_000.0  # wall clock of the recording's start


async def make_replay(services: Services, seconds: float = 10.0, published: bool = True) -> int:
    """A show that ended, its replay file, two pins and some chat, at known times."""
    db = services.db
    now = time.time()
    show_id = await db.execute(
        "INSERT INTO shows (title, starts_at, status, stream_key, live_started_at, "
        "live_ended_at, created_at, updated_at) "
        "VALUES ('Spring collection', ?, 'ended', ?, ?, ?, ?, ?)",
        (
            int(STARTED),
            f"key-{now}",
            int(STARTED),
            int(STARTED + seconds),
            int(now),
            int(now),
        ),
    )
    for sku, name, price in (("A1", "Linen shirt", 4900), ("B2", "Straw hat", 2500)):
        await db.execute(
            "INSERT INTO products (name, description, sku, price_minor, currency, stock_status, "
            "product_url, cart_url, created_at, updated_at) "
            "VALUES (?, '', ?, ?, 'EUR', 'in_stock', ?, '', ?, ?)",
            (name, f"{sku}-{show_id}", price, f"https://shop.example/{sku}", now, now),
        )
    ids = [r["id"] for r in await db.fetchall("SELECT id FROM products ORDER BY id DESC LIMIT 2")][
        ::-1
    ]
    await db.execute(
        "INSERT INTO show_pins (show_id, product_id, pinned_at, unpinned_at) VALUES (?, ?, ?, ?)",
        (show_id, ids[0], STARTED + 2.0, STARTED + 5.0),
    )
    await db.execute(
        "INSERT INTO show_pins (show_id, product_id, pinned_at, unpinned_at) VALUES (?, ?, ?, ?)",
        (show_id, ids[1], STARTED + 6.0, None),
    )
    chats = [
        (-30.0, "Hello, waiting for the show!", 0),
        (1.0, "first", 0),
        (3.5, "<script>alert(1)</script>", 0),
        (4.0, "a deleted message", 1),
        (8.0, "Is the hat in size L?", 0),
    ]
    for offset, text, deleted in chats:
        await db.execute(
            "INSERT INTO chat_messages (show_id, viewer, name, text, deleted, question, "
            "created_at) VALUES (?, 'v_x', 'Ana', ?, ?, ?, ?)",
            (show_id, text, deleted, int(text.endswith("?")), STARTED + offset),
        )
    services.replays.folder.mkdir(parents=True, exist_ok=True)
    write_counter_mp4(services.replays.video(show_id), seconds)
    services.replays.poster(show_id).write_bytes(b"\xff\xd8\xff\xd9")
    size = services.replays.video(show_id).stat().st_size
    await db.execute(
        "INSERT INTO replays (show_id, status, duration, full_duration, size, width, height, "
        "published, timeline, created_at, updated_at) "
        "VALUES (?, 'ready', ?, ?, ?, 320, 180, ?, ?, ?, ?)",
        (
            show_id,
            seconds,
            seconds,
            size,
            int(published),
            json.dumps([[STARTED, 0.0, seconds]]),
            now,
            now,
        ),
    )
    return int(show_id)


async def test_chapters_and_chat_follow_the_replay_clock(
    client: QuartClient, services: Services
) -> None:
    show_id = await make_replay(services)
    body = await (await client.get(f"/api/replays/{show_id}/chapters")).get_json()
    assert [(c["t"], c["end"], c["name"]) for c in body["chapters"]] == [
        (2.0, 5.0, "Linen shirt"),
        (6.0, 10.0, "Straw hat"),
    ]
    chat = await (await client.get(f"/api/replays/{show_id}/chat?from=0&to=5")).get_json()
    assert [(m["t"], m["text"]) for m in chat["messages"]] == [
        (0.0, "Hello, waiting for the show!"),
        (1.0, "first"),
        (3.5, "<script>alert(1)</script>"),
    ]
    later = await (await client.get(f"/api/replays/{show_id}/chat?from=5&to=30")).get_json()
    assert [(m["t"], m["question"]) for m in later["messages"]] == [(8.0, True)]
    assert later["cut"] is False


@pytest.mark.parametrize(
    "query",
    ["from=a&to=3", "from=5&to=2", "from=0&to=1000", "from=-1&to=3", "to=3", "from=nan&to=1"],
)
async def test_chat_replay_refuses_bad_windows(
    client: QuartClient, services: Services, query: str
) -> None:
    show_id = await make_replay(services)
    response = await client.get(f"/api/replays/{show_id}/chat?{query}")
    assert response.status_code == 400
    assert (await response.get_json())["error"]  # the reason, as JSON like the answers


async def test_the_show_page_becomes_its_replay(client: QuartClient, services: Services) -> None:
    show_id = await make_replay(services)
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert f'src="/replays/{show_id}.mp4"' in page
    assert 'data-t="2.0" data-end="5.0"' in page and 'data-t="6.0" data-end="10.0"' in page
    assert "utm_campaign=show-" in page  # shop links stay tagged for the show
    assert "/static/js/replay.js" in page
    home = await (await client.get("/")).get_data(as_text=True)
    assert f'href="/shows/{show_id}"' in home and f"/replays/{show_id}.jpg" in home
    assert "0:10" in home  # its length


async def test_unpublished_replays_are_for_staff_only(
    client: QuartClient, services: Services
) -> None:
    show_id = await make_replay(services, published=False)
    for path in (f"/replays/{show_id}.mp4", f"/api/replays/{show_id}/chapters"):
        assert (await client.get(path)).status_code == 404
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert "/replays/" not in page
    assert f"/shows/{show_id}" not in await (await client.get("/")).get_data(as_text=True)
    # Only the show's own staff preview it: a moderator of other shows does not.
    await sign_in(client, services, "moderator")
    assert (await client.get(f"/replays/{show_id}.mp4")).status_code == 404
    moderator = await services.db.fetchval("SELECT id FROM users WHERE role = 'moderator'")
    await shows.set_moderators(services.db, show_id, [moderator])
    assert (await client.get(f"/replays/{show_id}.mp4")).status_code == 200
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert "Not published" in page


async def test_admin_trims_renames_publishes_and_deletes(
    client: QuartClient, services: Services
) -> None:
    show_id = await make_replay(services)
    token = await sign_in(client, services, "admin")
    panel = await (await client.get(f"/admin/shows/{show_id}")).get_data(as_text=True)
    assert 'id="replay"' in panel and "Trim" in panel

    async def post(action: str, **form: str):
        return await client.post(
            f"/admin/shows/{show_id}/replay/{action}", form={"csrf_token": token, **form}
        )

    assert (await post("rename", title="Spring, the best of")).status_code == 302
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert "<h1>Spring, the best of</h1>" in page

    # Trim 2.5 s - 8 s: the cut starts on the keyframe at 2 s.
    assert (await post("trim", start="0:02.5", end="8")).status_code == 302
    replay = await services.replays.get(show_id)
    assert replay is not None and replay.trimmed
    assert replay.duration == pytest.approx(6.0, abs=0.1)
    first, last, _ = first_and_last(services.replays.video(show_id))
    assert (first, last) == (2 * FPS, 8 * FPS - 1)
    assert services.replays.full(show_id).exists()  # kept, so the trim can be undone
    # The chapters and the chat move with it; what was cut goes.
    body = await (await client.get(f"/api/replays/{show_id}/chapters")).get_json()
    assert [(c["t"], c["end"]) for c in body["chapters"]] == [(0.0, 3.0), (4.0, 6.0)]
    chat = await (await client.get(f"/api/replays/{show_id}/chat?from=0&to=10")).get_json()
    assert [(m["t"], m["text"]) for m in chat["messages"]] == [
        (1.5, "<script>alert(1)</script>"),
        (6.0, "Is the hat in size L?"),
    ]

    for bad in ({"start": "abc"}, {"start": "5", "end": "4"}, {"start": "0", "end": "0:30"}):
        response = await post("trim", **bad)
        assert response.status_code == 400, bad
        assert "was not changed" in await response.get_data(as_text=True)
    # Undo: the whole recording again.
    assert (await post("trim", whole="1")).status_code == 302
    replay = await services.replays.get(show_id)
    assert replay is not None and not replay.trimmed
    assert replay.duration == pytest.approx(10.0, abs=0.1)
    assert not services.replays.full(show_id).exists()

    assert (await post("publish", published="0")).status_code == 302
    assert (await client.post("/logout", form={"csrf_token": token})).status_code == 302
    assert (await client.get(f"/replays/{show_id}.mp4")).status_code == 404


async def test_replay_admin_is_server_checked(client: QuartClient, services: Services) -> None:
    show_id = await make_replay(services)
    # Anonymous: no; a moderator: not theirs to edit; a host cannot delete.
    anonymous = await client.post(f"/admin/shows/{show_id}/replay/publish", form={})
    assert anonymous.status_code in (400, 401, 403)  # refused before any change
    token = await sign_in(client, services, "moderator")
    response = await client.post(
        f"/admin/shows/{show_id}/replay/publish", form={"csrf_token": token, "published": "0"}
    )
    assert response.status_code == 403
    await client.post("/logout", form={"csrf_token": token})
    token = await sign_in(client, services, "host")
    response = await client.post(
        f"/admin/shows/{show_id}/replay/delete", form={"csrf_token": token}
    )
    assert response.status_code == 403
    replay = await services.replays.get(show_id)
    assert replay is not None and replay.published
    # Without the form's token nothing happens either.
    response = await client.post(f"/admin/shows/{show_id}/replay/publish", form={"published": "0"})
    assert response.status_code == 400
    await client.post("/logout", form={"csrf_token": token})
    token = await sign_in(client, services, "admin")
    response = await client.post(
        f"/admin/shows/{show_id}/replay/delete", form={"csrf_token": token}
    )
    assert response.status_code == 302
    assert await services.replays.get(show_id) is None
    assert not services.replays.video(show_id).exists()
    assert (await client.get(f"/admin/shows/{show_id}")).status_code == 200


async def test_retention_deletes_the_oldest_unpublished_first(
    client: QuartClient, services: Services
) -> None:
    shows = [await make_replay(services, 2.0, published=p) for p in (True, False, True, False)]
    ages = [40, 30, 20, 10]  # days
    now = time.time()
    for show_id, days in zip(shows, ages, strict=True):
        await services.db.execute(
            "UPDATE replays SET created_at = ?, size = 1000000000 WHERE show_id = ?",
            (now - days * 86400, show_id),
        )
    # 35 days: the 40-day-old one goes. Then 2 GB: of the three left (3 GB), the oldest
    # unpublished (30 days) goes before any published one.
    gone = await services.replays.expire(35, 2.0, now)
    assert gone == [shows[0], shows[1]]
    for show_id in shows[:2]:
        assert await services.replays.get(show_id) is None
        assert not services.replays.video(show_id).exists()
    for show_id in shows[2:]:
        assert await services.replays.get(show_id) is not None
    assert await services.replays.expire(0, 0, now) == []  # no limits: nothing goes


async def test_replays_left_half_made_are_found_at_start(
    client: QuartClient, services: Services
) -> None:
    made = await make_replay(services, 2.0)  # ready, its parts gone
    left = await make_replay(services, 2.0)
    await services.db.execute("UPDATE replays SET status = 'processing' WHERE show_id = ?", (left,))
    never = await make_replay(services, 2.0)
    await services.db.execute("DELETE FROM replays WHERE show_id = ?", (never,))
    for show_id in (left, never, made + 1000):  # the last: a folder of no show
        folder = services.replays.recordings / f"show-{show_id}"
        folder.mkdir(parents=True)
        write_counter_mp4(folder / "part-001.mp4", 1.0)
    (services.replays.recordings / "show-x").mkdir()  # not a show folder
    assert await services.replays.pending() == [left, never]
