"""Storage care around recording, on the real app with a real aiortc publisher on
127.0.0.1: a show refuses to go live on a nearly full disk, and a disk that fills in the
middle of a show stops the recording cleanly while the show goes on, with the staff told
and the replay made from what was written."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.app import create_app
from appliance.catalog import shows
from appliance.config import Config, load_config
from appliance.services import Services
from tests.conftest import sign_in
from tests.media_helpers import CounterVideoTrack, answer, make_publisher

pytestmark = pytest.mark.usefixtures("loopback_candidates")


def config_with(tmp_path: Path, **overrides: str) -> Config:
    return load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "media.host_addresses": "127.0.0.1",
            **overrides,
        },
    )


@contextlib.asynccontextmanager
async def started(config: Config) -> AsyncIterator[Quart]:
    application = create_app(config)
    async with application.test_app():
        yield application


async def new_show(services: Services) -> shows.Show:
    data = shows.ShowData("Disk test", "", int(time.time()) + 3600, 60, None)
    show = await shows.get_show(services.db, await shows.create_show(services.db, data))
    assert show is not None
    return show


async def whip(client: QuartClient, show: shows.Show, sdp: str) -> tuple[int, str]:
    response = await client.post(
        f"/whip/{show.id}",
        data=sdp.encode(),
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {show.stream_key}"},
    )
    return response.status_code, await response.get_data(as_text=True)


async def test_a_nearly_full_disk_refuses_to_go_live(tmp_path: Path) -> None:
    # More free space asked for than any disk has.
    async with started(config_with(tmp_path, **{"replays.min_free_gb": "1000000"})) as app:
        services: Services = app.extensions["vitrine"]
        client = app.test_client()
        show = await new_show(services)
        status, body = await whip(client, show, "v=0\r\n")
        assert status == 507
        assert "not enough free disk space" in body and "replays.min_free_gb" in body
        again = await shows.get_show(services.db, show.id)
        assert again is not None and again.status == "scheduled"
        await sign_in(client, services, "admin")  # may publish any show
        studio = await (await client.get(f"/studio/{show.id}")).get_data(as_text=True)
        assert 'id="studio-disk" role="alert">' in studio  # shown, not hidden


async def test_without_recording_the_disk_is_not_checked(tmp_path: Path) -> None:
    overrides = {"replays.min_free_gb": "1000000", "media.record": "false"}
    async with started(config_with(tmp_path, **overrides)) as app:
        services: Services = app.extensions["vitrine"]
        show = await new_show(services)
        status, body = await whip(app.test_client(), show, "v=0\r\n")
        assert status == 400 and "bad offer" in body  # past the disk check, to the SDP


def fill_the_disk_under(path: Path) -> None:
    """Make every later write to the open file `path` fail as on a full disk (ENOSPC), by
    putting /dev/full in place of the file behind the writer's own descriptor."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target == str(path):
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, int(fd))
            os.close(full)
            return
    raise AssertionError(f"{path} is not open")


async def until(check, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def test_a_disk_filling_mid_show_stops_only_the_recording(tmp_path: Path) -> None:
    async with started(config_with(tmp_path)) as app:
        services: Services = app.extensions["vitrine"]
        live = app.extensions["vitrine.live"]
        client = app.test_client()
        show = await new_show(services)
        track = CounterVideoTrack(320, 180, 30)
        pc, offer = await make_publisher(track)
        try:
            status, sdp = await whip(client, show, offer)
            assert status == 201, sdp
            await answer(pc, sdp)
            recorder = None

            async def recorded(n: int) -> bool:
                nonlocal recorder
                recorder = live.plane.recording(str(show.id))
                return recorder is not None and recorder.video_frames >= n

            await until(lambda: recorded(45))
            assert recorder is not None
            fill_the_disk_under(recorder.path)

            async def stopped() -> bool:
                return recorder is not None and recorder.error is not None

            await until(stopped)
            assert "No space left on device" in str(recorder.error)
            # The show goes on: still live, still publishing, frames still arriving.
            sent = track.count
            await asyncio.sleep(1.0)
            assert track.count > sent and live.plane.is_publishing(str(show.id))
            assert live.status(show.id)["publishing"]
            # Staff are told, in the status the studio polls and on the admin show page;
            # viewers are not.
            anonymous = await (await client.get(f"/api/shows/{show.id}/status")).get_json()
            assert "recording_problem" not in anonymous
            token = await sign_in(client, services, "admin")
            staff = await (await client.get(f"/api/shows/{show.id}/status")).get_json()
            assert "No space left on device" in staff["recording_problem"]
            page = await (await client.get(f"/admin/shows/{show.id}")).get_data(as_text=True)
            assert "The recording has stopped" in page
            # Ending the show makes the replay from what was written, with a note.
            response = await client.post(
                f"/admin/shows/{show.id}/end", form={"csrf_token": token, "confirm": "yes"}
            )
            assert response.status_code == 302

            async def replay_ready() -> bool:
                replay = await services.replays.get(show.id)
                return replay is not None and replay.status != "processing"

            await until(replay_ready, 30)
            replay = await services.replays.get(show.id)
            assert replay is not None and replay.status == "ready", replay
            assert replay.note and "No space left on device" in replay.note
            assert replay.duration is not None and replay.duration >= 1.0
        finally:
            await pc.close()
