"""Backups that restore: a shop with products, an uploaded picture, a show with chat,
pins, KPI events and its replay, backed up by `vitrine backup` while the real server
serves it and writes, restored by `vitrine restore` into a new data directory (never
over the running server's), and served again whole. Also: the checks a copy must pass,
the schedule, pruning, and the after-command's time limit."""

from __future__ import annotations

import json
import logging
import secrets
import socket
import sqlite3
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from appliance.app import create_app
from appliance.backups.copy import make_backup, prune
from appliance.backups.restore import RestoreError, check_backup, restore
from appliance.backups.running import ServerLock, serving
from appliance.backups.schedule import BackupSchedule
from appliance.catalog.pngdraw import product_picture
from appliance.config import load_config
from appliance.storage.db import Database, latest_version, migrate_sync
from tests.conftest import launch, stop
from tests.test_cli import vitrine
from tests.test_replays import make_replay
from tests.test_upgrades import old_database


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def make_shop(data: Path) -> dict[str, object]:
    """The shop, made by the app itself on `data`; what a restore must bring back."""
    config = load_config(
        environ={}, overrides={"media.workers": "0", "storage.data_dir": str(data)}
    )
    app = create_app(config)
    async with app.test_app():
        services = app.extensions["vitrine"]
        show_id = await make_replay(services)
        picture = await services.uploads.save(product_picture((200, 40, 90), 64))
        await services.db.execute("UPDATE products SET image = ? WHERE sku LIKE 'A1-%'", (picture,))
        await services.db.executemany(
            "INSERT INTO events (show_id, ts, viewer, kind, props) VALUES (?, ?, ?, 'join', '{}')",
            [(show_id, time.time() - n, f"viewer-{n}") for n in range(25)],
        )
        replay = services.replays.video(show_id).read_bytes()
    return {"show": show_id, "picture": picture, "replay": replay}


class EventWriter(threading.Thread):
    """Viewer pages reporting to the server as fast as it answers, until stopped."""

    def __init__(self, url: str, show: int) -> None:
        super().__init__(daemon=True)
        self.url, self.show = url, show
        self.accepted = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            body = json.dumps({"show": self.show, "kind": "join"}).encode()
            request = urllib.request.Request(
                self.url + "/api/events",
                data=body,
                headers={
                    "Content-Type": "text/plain;charset=UTF-8",
                    "Cookie": f"vitrine_viewer={secrets.token_urlsafe(16)}",
                },
            )
            with urllib.request.urlopen(request, timeout=10) as r:
                self.accepted += r.status == 204


async def test_a_shop_backed_up_while_serving_restores_whole(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shop = await make_shop(data)
    show = shop["show"]
    copy = tmp_path / "copy"
    server = launch(data, tmp_path / "server.log", {"VITRINE_KPIS_EVENTS_PER_MINUTE": "100000"})
    writer = EventWriter(server.url, int(show))  # type: ignore[call-overload]
    try:
        writer.start()
        while writer.accepted < 20:
            await asyncio_sleep(0.05)
        result = vitrine("backup", "--output", str(copy), data_dir=data)
        assert result.returncode == 0, result.stderr
        assert writer.accepted > 20 and writer.is_alive()  # it wrote during the backup
        # Never over a running server's data.
        refused = vitrine("restore", str(copy), data_dir=data)
        assert refused.returncode == 1
        assert "stop it before restoring" in refused.stderr
    finally:
        writer.done.set()
        writer.join(10)
        stop(server)
    manifest = json.loads((copy / "backup.json").read_text())
    assert manifest["schema_version"] == latest_version()

    restored = tmp_path / "restored"
    result = vitrine("restore", str(copy), data_dir=restored)
    assert result.returncode == 0, result.stderr
    assert f"schema version {latest_version()}" in result.stdout
    again = launch(restored, tmp_path / "again.log")
    try:
        status, page = get(f"{again.url}/shows/{show}")
        assert status == 200
        text = page.decode()
        assert "Spring collection" in text and f'src="/replays/{show}.mp4"' in text
        assert f"/uploads/{shop['picture']}" in text or "Linen shirt" in text
        assert get(f"{again.url}/replays/{show}.mp4") == (200, shop["replay"])
        assert get(f"{again.url}/uploads/{shop['picture']}")[0] == 200
        status, body = get(f"{again.url}/api/replays/{show}/chat?from=0&to=10")
        assert status == 200
        assert "Is the hat in size L?" in [m["text"] for m in json.loads(body)["messages"]]
        status, body = get(f"{again.url}/api/replays/{show}/chapters")
        assert [c["name"] for c in json.loads(body)["chapters"]] == ["Linen shirt", "Straw hat"]
    finally:
        stop(again)
    with sqlite3.connect(restored / "vitrine.sqlite3") as conn:
        events = conn.execute("SELECT COUNT(*) FROM events WHERE show_id = ?", (show,)).fetchone()
        assert events[0] >= 25  # the shop's own, and those written before the copy


async def test_restore_keeps_the_replaced_data_aside(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    await make_shop(first)
    migrate_sync(second / "vitrine.sqlite3")
    (second / "uploads").mkdir()
    (second / "uploads" / "mine.png").write_bytes(b"old")
    copy = tmp_path / "copy"
    make_backup(first, copy)

    done = restore(copy, second)

    assert done.schema_version == latest_version()
    assert done.aside is not None and done.aside.name.startswith("replaced-")
    assert (done.aside / "uploads" / "mine.png").read_bytes() == b"old"
    assert (done.aside / "vitrine.sqlite3").is_file()
    assert not (second / "uploads" / "mine.png").exists()
    with sqlite3.connect(second / "vitrine.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 2


async def test_a_copy_must_be_whole_and_known(tmp_path: Path) -> None:
    data = tmp_path / "data"
    await make_shop(data)
    copy = tmp_path / "copy"
    make_backup(data, copy)
    assert check_backup(copy) == latest_version()

    with pytest.raises(RestoreError, match="not a Vitrine backup"):
        check_backup(tmp_path / "nowhere")
    newer = tmp_path / "newer"
    make_backup(data, newer)
    with sqlite3.connect(newer / "vitrine.sqlite3") as conn:
        conn.execute(
            "INSERT INTO schema_migrations VALUES (?, 'from-the-future.sql', 0)",
            (latest_version() + 1,),
        )
    with pytest.raises(RestoreError, match="newer Vitrine"):
        check_backup(newer)
    damaged = tmp_path / "damaged"
    make_backup(data, damaged)
    raw = bytearray((damaged / "vitrine.sqlite3").read_bytes())
    page = 4096
    for n in range(2 * page, len(raw) - page, page):  # scramble every page past the schema
        raw[n + 8 : n + 400] = secrets.token_bytes(392)
    (damaged / "vitrine.sqlite3").write_bytes(bytes(raw))
    with pytest.raises(RestoreError, match=r"damaged|not a readable"):
        check_backup(damaged)
    result = vitrine("restore", str(damaged), data_dir=tmp_path / "target")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "target" / "vitrine.sqlite3").exists()


def test_the_server_lock_says_who_serves(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    assert serving(tmp_path) is None
    lock = ServerLock(tmp_path)
    assert lock.acquire()
    try:
        assert serving(tmp_path) is not None
        assert not ServerLock(tmp_path).acquire()  # a second server on the same data
    finally:
        lock.release()
    assert serving(tmp_path) is None  # released (a dead process releases it too)

    # A server without the lock (an older Vitrine) is found by the address it wrote.
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        (tmp_path / "serving-url").write_text(f"http://127.0.0.1:{port}\n")
        assert f"answers at http://127.0.0.1:{port}" in (serving(tmp_path) or "")
    assert serving(tmp_path) is None  # the file is left, but nobody answers there


async def test_an_older_backup_restores_and_is_upgraded_at_start(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old_database(old / "vitrine.sqlite3", 3)
    copy = tmp_path / "copy"
    make_backup(old, copy)
    target = tmp_path / "target"

    assert restore(copy, target).schema_version == 3
    app = create_app(
        load_config(environ={}, overrides={"media.workers": "0", "storage.data_dir": str(target)})
    )
    async with app.test_app():  # the start migrates it, after a backup
        pass
    with sqlite3.connect(target / "vitrine.sqlite3") as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (
            latest_version(),
        )
        assert conn.execute("SELECT text FROM chat_messages").fetchone() == ("Love the teapot",)
    assert list((target / "backups").glob("before-migration-0003-*.sqlite3"))


async def test_scheduled_backups_keep_the_newest_and_run_the_after_command(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    await make_shop(data)
    folder = tmp_path / "backups"
    seen = tmp_path / "seen.txt"
    hook = tmp_path / "hook.sh"
    hook.write_text(f'#!/bin/sh\necho "$1" >> {seen}\n')
    hook.chmod(0o700)
    db = Database(data / "vitrine.sqlite3")
    await db.open()
    try:
        schedule = BackupSchedule(
            db, data, every_hours=0.0002, keep=2, folder=str(folder), after_command=str(hook)
        )
        await schedule.start()
        deadline = time.monotonic() + 30
        while schedule.made < 3 and time.monotonic() < deadline:
            await asyncio_sleep(0.1)
        await schedule.close()
        assert schedule.made >= 3
        kept = sorted(p for p in folder.iterdir() if (p / "backup.json").is_file())
        assert len(kept) == 2  # older ones pruned
        ran = seen.read_text().split()
        assert len(ran) == schedule.made and str(kept[-1].resolve()) in ran
        from appliance.backups.copy import last_backup

        last = await last_backup(db)
        assert last is not None and Path(last.folder) in [k.resolve() for k in kept]
    finally:
        await db.close()


async def test_the_after_command_is_time_limited_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    schedule = BackupSchedule(
        None,  # type: ignore[arg-type]
        tmp_path,
        every_hours=0,
        keep=0,
        after_command="sh -c 'sleep 30'",
        after_timeout=0.5,
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        assert await schedule.run_after(tmp_path) is None
    assert time.monotonic() - started < 5
    assert "stopped after" in caplog.text
    failing = BackupSchedule(None, tmp_path, 0, 0, after_command="false")  # type: ignore[arg-type]
    with caplog.at_level(logging.INFO):
        assert await failing.run_after(tmp_path) == 1
    assert "failed with status 1" in caplog.text
    missing = BackupSchedule(None, tmp_path, 0, 0, after_command="/no/such/tool")  # type: ignore[arg-type]
    assert await missing.run_after(tmp_path) is None


def test_prune_touches_only_backups(tmp_path: Path) -> None:
    for n in range(4):
        folder = tmp_path / f"2026010{n}-000000"
        folder.mkdir()
        (folder / "backup.json").write_text(json.dumps({"made_at": 1000 + n}))
    (tmp_path / "before-migration-0003.sqlite3").write_bytes(b"x")
    (tmp_path / "my-notes").mkdir()
    removed = prune(tmp_path, 2)
    assert sorted(p.name for p in removed) == ["20260100-000000", "20260101-000000"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20260102-000000",
        "20260103-000000",
        "before-migration-0003.sqlite3",
        "my-notes",
    ]


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)
