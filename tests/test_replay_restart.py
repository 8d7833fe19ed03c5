"""The server killed with SIGKILL 10 s into a show, then started again on the same data:
the show ends after its grace period and its replay holds what was recorded before the
kill, playable for at least 8 s."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, read_back
from tests.test_media_http import Show, publish, replay_status, until

FPS = 15


pytestmark = pytest.mark.usefixtures("loopback_candidates")


async def test_a_killed_server_keeps_the_show_for_its_replay(
    live_server: LiveServer, tmp_path: Path
) -> None:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Killed", "--starts-at", "2030-01-01T10:00")
    )
    show = Show(live_server, created["id"], created["stream_key"])
    track = CounterVideoTrack(320, 180, FPS)
    pc, _ = await publish(show, track)
    try:
        await until(lambda: show.status()["publishing"])
        began = time.monotonic()
        await asyncio.sleep(10.0)
        sent = track.count
        live_server.process.send_signal(signal.SIGKILL)
        live_server.process.wait(timeout=10)
        alive_for = time.monotonic() - began
    finally:
        await pc.close()
    # Started again on the same data: the show, still live, waits out its grace period
    # for the publisher, ends, and its replay is made from the part written before the kill.
    again = launch(live_server.data_dir, tmp_path / "server-again.log")
    try:
        show = Show(again, show.id, show.key)
        await until(lambda: show.status()["status"] == "ended", 20)
        await until(lambda: replay_status(show) == "ready", 30)
        counters, times, audio_seconds, _ = await asyncio.to_thread(
            read_back, again.data_dir / "replays" / f"show-{show.id}.mp4"
        )
    finally:
        stop(again)
    last = times[-1]
    assert audio_seconds > 0
    assert counters == sorted(counters) and counters[0] < FPS  # from the start, in order
    assert last >= 8.0, (last, alive_for)  # ~10 s recorded, at most a second or two lost
    assert counters[-1] >= sent - 2 * FPS, (counters[-1], sent)
