"""The admin home's server panel: what an operator checks first (version, uptime, disk
free and the replays' share, whether recording works, HTTPS, the last backup), for
admins only, on the real app in-process."""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator
from pathlib import Path

from quart import Quart
from quart.testing import QuartClient

from appliance.app import create_app
from appliance.backups.copy import make_backup, record_last
from appliance.config import load_config
from appliance.metrics.collect import vitrine_version
from media.recorder import Recorder
from tests.conftest import sign_in
from tests.test_replays import make_replay


async def started(tmp_path: Path, **settings: str) -> AsyncIterator[Quart]:
    overrides = {"media.workers": "0", "storage.data_dir": str(tmp_path / "data"), **settings}
    app = create_app(load_config(environ={}, overrides=overrides))
    async with app.test_app():
        yield app


async def home(client: QuartClient, **kwargs: str) -> str:
    response = await client.get("/admin", **kwargs)
    assert response.status_code == 200
    return html.unescape(await response.get_data(as_text=True))


async def test_an_admin_sees_what_to_check_first(tmp_path: Path) -> None:
    async for app in started(tmp_path):
        services = app.extensions["vitrine"]
        client = app.test_client()
        await sign_in(client, services, "admin")
        await make_replay(services)
        page = await home(client)
        assert "This server" in page
        assert vitrine_version() in page and vitrine_version() != "unknown"
        assert "Running for" in page and "Free disk space" in page
        assert "1 replay," in page
        assert "Working" in page  # recording on, nothing failing
        assert "No: phones open the camera only on HTTPS pages" in page
        assert "None yet: run “vitrine backup”" in page
        assert "No scheduled backups" in page

        backup = make_backup(services.config.data_dir, tmp_path / "copy")
        record_last(services.config.data_dir, backup)
        page = await home(client)
        assert str((tmp_path / "copy").resolve()) in page
        assert "None yet" not in page

        # Over HTTPS (a proxy in front that forwards the scheme), it says so.
        page = await home(client, scheme="https")
        assert "Yes: phones may open the camera." in page


async def test_recording_problems_and_a_full_disk_are_shown(tmp_path: Path) -> None:
    async for app in started(tmp_path, **{"replays.min_free_gb": "1000000"}):
        services = app.extensions["vitrine"]
        client = app.test_client()
        await sign_in(client, services, "admin")
        now = int(time.time())
        show_id = await services.db.execute(
            "INSERT INTO shows (title, starts_at, status, stream_key, live_started_at, "
            "created_at, updated_at) VALUES ('Autumn sale', ?, 'live', 'k-autumn', ?, ?, ?)",
            (now, now, now, now),
        )
        plane = app.extensions["vitrine.live"].plane
        recorder = Recorder(tmp_path / "rec")
        recorder.error = "No space left on device"
        plane.recorders[str(show_id)] = recorder
        try:
            page = await home(client)
        finally:
            del plane.recorders[str(show_id)]
            await asyncio.to_thread(recorder.close)
        assert "The recording of “Autumn sale” stopped: No space left on device" in page
        assert "Working" not in page
        assert "Below the 1e+06 GB a show needs to go live" in page


async def test_recording_off_and_scheduled_backups(tmp_path: Path) -> None:
    settings = {
        "media.record": "false",
        "backup.every_hours": "0.0003",
        "backup.folder": str(tmp_path / "scheduled"),
        "server.public_url": "https://live.example.com",
    }
    async for app in started(tmp_path, **settings):
        services = app.extensions["vitrine"]
        client = app.test_client()
        await sign_in(client, services, "admin")
        # The server made its first backup by itself, at start, off the event loop.
        deadline = time.monotonic() + 20
        while app.extensions["vitrine.backups"].made < 1:
            assert time.monotonic() < deadline, "no scheduled backup"
            await asyncio.sleep(0.05)
        page = await home(client)
        assert "Off: shows get no replay (setting media.record)." in page
        assert "Scheduled every 0.0003 hours." in page
        assert str((tmp_path / "scheduled").resolve()) in page
        assert "Yes: phones may open the camera." in page  # public_url is https


async def test_only_admins_see_the_server_panel(tmp_path: Path) -> None:
    async for app in started(tmp_path):
        client = app.test_client()
        await sign_in(client, app.extensions["vitrine"], "host")
        page = await home(client)
        assert "Hello" in page and "This server" not in page
        assert "Free disk space" not in page
