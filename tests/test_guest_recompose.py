"""A composition of the guest into the replay that a killed server left unfinished is
made again at the next start, by a real server process: nothing the guest recorded is
lost. A replay trimmed before the composition is composed whole and cut again."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import av

from media.finalize import cut
from tests.conftest import LiveServer, launch, stop
from tests.test_guest_compose import BLUE, RED, colour_at, coloured, frames_at, near

STARTED = 1_700_000_000.0  # the wall clock when each show's recording began


def db(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "vitrine.sqlite3")


def composition(data_dir: Path, show_id: int) -> str | None:
    with db(data_dir) as conn:
        row = conn.execute(
            "SELECT status FROM guest_compositions WHERE show_id = ?", (show_id,)
        ).fetchone()
    return row[0] if row else None


def ended_show_with_guest(server: LiveServer, seconds: float, trim_end: float | None) -> int:
    """A show that ended with a guest on the stage from 1 s to `seconds` - 2 s: the host's
    replay (red) made, the guest's recording (blue) left for the composition."""
    show = json.loads(
        server.cli("shows", "create", "--title", "Guest", "--starts-at", "2030-01-01T10:00")
    )
    sid = int(show["id"])
    data = server.data_dir
    replays = data / "replays"
    replays.mkdir(exist_ok=True)
    video = replays / f"show-{sid}.mp4"
    coloured(video, RED, 640, 360, seconds, audio=True)
    duration, trim_start = seconds, None
    if trim_end is not None:
        full = replays / f"show-{sid}.full.mp4"
        video.replace(full)
        duration = cut(full, video, replays / f"show-{sid}.jpg", 0.0, trim_end).duration
        trim_start = 0.0
    guest = data / "recordings" / "guest" / f"show-{sid}"
    guest.mkdir(parents=True)
    coloured(guest / "part-001.mp4", BLUE, 240, 320, seconds - 1, audio=True, tone=True)
    (guest / "part-001.json").write_text(json.dumps({"started_at": STARTED + 1.0}))
    now = time.time()
    with db(data) as conn:
        conn.execute("UPDATE shows SET status = 'ended' WHERE id = ?", (sid,))
        conn.execute(
            "INSERT INTO replays (show_id, status, duration, size, width, height, published,"
            " created_at, updated_at, timeline, full_duration, trim_start, trim_end)"
            " VALUES (?, 'ready', ?, ?, 640, 360, 0, ?, ?, ?, ?, ?, ?)",
            (
                sid,
                duration,
                video.stat().st_size,
                now,
                now,
                json.dumps([[STARTED, 0.0, seconds]]),
                seconds,
                trim_start,
                trim_end,
            ),
        )
        conn.executemany(
            "INSERT INTO guest_stage (show_id, at, guest, layout) VALUES (?, ?, ?, 'side')",
            [(sid, STARTED + 1.0, 1), (sid, STARTED + seconds - 2.0, 0)],
        )
    return sid


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_ready(server: LiveServer, show_id: int) -> None:
    deadline = time.monotonic() + 300
    while composition(server.data_dir, show_id) != "ready":
        assert composition(server.data_dir, show_id) != "failed", server.output()[-3000:]
        assert time.monotonic() < deadline, server.output()[-3000:]
        assert server.process.poll() is None, server.output()[-3000:]
        time.sleep(0.2)


def test_a_killed_composition_is_made_at_the_next_start(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "server.log"
    server = launch(data, log)
    stop(server)  # the data folder and its tables are made: now the shows that ended
    sid = ended_show_with_guest(server, 20.0, None)
    trimmed = ended_show_with_guest(server, 10.0, 6.0)
    folder = data / "recordings" / "guest" / f"show-{sid}"
    video = data / "replays" / f"show-{sid}.mp4"

    # The first start composes the untrimmed show; it is killed outright meanwhile.
    server = launch(data, log)
    deadline = time.monotonic() + 120
    child = None
    while child is None:
        assert time.monotonic() < deadline, server.output()[-3000:]
        assert composition(data, sid) != "ready", "composed before it could be killed"
        for tmp in folder.glob(".composed.mp4.*.tmp"):
            child = int(tmp.name.split(".")[3])
        time.sleep(0.02)
    server.process.kill()
    server.process.wait()
    assert composition(data, sid) == "processing"
    # The composing child dies with the server; the host's replay is untouched.
    deadline = time.monotonic() + 10
    while alive(child):
        assert time.monotonic() < deadline, f"the composing child {child} outlived the server"
        time.sleep(0.05)
    assert folder.is_dir()
    assert near(colour_at(frames_at(video, [3.0])[3.0], 480, 180), RED)

    # The next start composes again, both shows.
    server = launch(data, log)
    try:
        wait_ready(server, sid)
        wait_ready(server, trimmed)
    finally:
        stop(server)
    assert "composing the replay with its guest again" in server.output()
    assert not folder.exists(), "the guest's recording is deleted once in the replay"
    frames = frames_at(video, [0.5, 3.0, 19.0])
    assert near(colour_at(frames[0.5], 480, 180), RED)
    assert near(colour_at(frames[3.0], 160, 180), RED)
    assert near(colour_at(frames[3.0], 480, 180), BLUE)
    assert near(colour_at(frames[19.0], 480, 180), RED)
    with av.open(str(video)) as container:
        assert container.streams.audio, "the replay keeps its sound"

    # The trimmed replay: the whole recording composed, then cut again at the same times.
    trimmed_video = data / "replays" / f"show-{trimmed}.mp4"
    full = data / "replays" / f"show-{trimmed}.full.mp4"
    assert near(colour_at(frames_at(full, [7.0])[7.0], 480, 180), BLUE)
    assert near(colour_at(frames_at(trimmed_video, [3.0])[3.0], 480, 180), BLUE)
    with av.open(str(trimmed_video)) as container:
        seconds = float(container.duration or 0) / av.time_base
    assert 5.0 <= seconds <= 7.0, seconds
    with db(data) as conn:
        duration, trim_end, size = conn.execute(
            "SELECT duration, trim_end, size FROM replays WHERE show_id = ?", (trimmed,)
        ).fetchone()
    assert trim_end == 6.0 and 5.0 <= duration <= 7.0
    assert size == os.path.getsize(trimmed_video)
    assert not (data / "recordings" / "guest" / f"show-{trimmed}").exists()
