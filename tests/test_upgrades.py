"""Upgrades: a database made by the first release (migration 0001 alone, and 0001-0003)
and filled with a shop, upgraded to the current schema by the current code: its data
kept, a backup made before migrating, and the shop served from it. `vitrine migrate
--dry-run` lists what would run and changes nothing."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from appliance.accounts.security import hash_password
from appliance.app import create_app
from appliance.config import load_config
from appliance.storage.db import latest_version, migrate_sync, migration_files
from tests.conftest import PASSWORD, sign_in_as
from tests.test_cli import vitrine

ADMIN = "first-release@example.com"


def old_database(path: Path, up_to: int) -> None:
    """The database an older Vitrine made: migrations 1..`up_to` applied as it applied
    them (one transaction each, recorded in schema_migrations)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    for number, name, sql in migration_files()[:up_to]:
        conn.executescript(
            f"BEGIN;\n{sql}\nINSERT INTO schema_migrations (version, name, applied_at) "
            f"VALUES ({number}, '{name}', strftime('%s','now'));\nCOMMIT;"
        )
    now = int(time.time())
    with conn:
        conn.execute(
            "INSERT INTO users (email, name, role, password_hash, created_at) "
            "VALUES (?, 'Old admin', 'admin', ?, ?)",
            (ADMIN, hash_password(PASSWORD), now),
        )
        conn.execute("UPDATE shop_settings SET name = 'Maison Ancienne' WHERE id = 1")
        conn.execute(
            "INSERT INTO products (sku, name, price_minor, currency, stock_status, created_at, "
            "updated_at) VALUES ('OLD-1', 'Vintage teapot', 4200, 'EUR', 'in_stock', ?, ?)",
            (now, now),
        )
        conn.execute(
            "INSERT INTO shows (title, starts_at, stream_key, status, live_started_at, "
            "live_ended_at, created_at, updated_at) "
            "VALUES ('First ever show', ?, 'old-key', 'ended', ?, ?, ?, ?)",
            (now - 7200, now - 7200, now - 3600, now, now),
        )
        conn.execute("INSERT INTO show_products (show_id, product_id, position) VALUES (1, 1, 0)")
        if up_to >= 3:
            conn.execute(
                "INSERT INTO chat_messages (show_id, viewer, name, text, created_at) "
                "VALUES (1, 'v1', 'Ana', 'Love the teapot', ?)",
                (now - 5000,),
            )
            conn.execute(
                "INSERT INTO events (show_id, ts, viewer, kind) VALUES (1, ?, 'v1', 'join')",
                (now - 5000,),
            )
    conn.close()


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


@pytest.mark.parametrize("up_to", [1, 3])
async def test_a_first_release_database_upgrades_with_its_data(tmp_path: Path, up_to: int) -> None:
    data = tmp_path / "data"
    db_path = data / "vitrine.sqlite3"
    old_database(db_path, up_to)
    backups = data / "backups"

    applied = migrate_sync(db_path, backups)

    assert applied == [name for _, name, _ in migration_files()[up_to:]]
    with sqlite3.connect(db_path) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, latest_version() + 1))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("SELECT name FROM products").fetchall() == [("Vintage teapot",)]
        show = conn.execute("SELECT title, status, stream_key FROM shows").fetchone()
        assert show == ("First ever show", "ended", "old-key")
        # Columns later migrations added exist, with their defaults on the old rows.
        assert "replay_auto_publish" in columns(conn, "shows")
        assert "conversion_secret" in columns(conn, "shop_settings")
        if up_to >= 3:
            assert conn.execute("SELECT text FROM chat_messages").fetchone() == ("Love the teapot",)
            assert conn.execute("SELECT kind FROM events").fetchone() == ("join",)
    # The copy made before migrating is the old database, whole, at the old version.
    [copy] = list(backups.glob(f"before-migration-{up_to:04d}-*.sqlite3"))
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (up_to,)
        assert conn.execute("SELECT name FROM products").fetchone() == ("Vintage teapot",)

    # The current app serves the upgraded shop, and its old admin signs in.
    config = load_config(
        environ={}, overrides={"media.workers": "0", "storage.data_dir": str(data)}
    )
    app = create_app(config)
    async with app.test_app():
        client = app.test_client()
        home = await (await client.get("/")).get_data(as_text=True)
        assert "Maison Ancienne" in home
        page = await (await client.get("/shows/1")).get_data(as_text=True)
        assert "First ever show" in page and "Vintage teapot" in page
        await sign_in_as(client, ADMIN)
        products = await (await client.get("/admin/products")).get_data(as_text=True)
        assert "OLD-1" in products


def test_migrate_dry_run_lists_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db_path = data / "vitrine.sqlite3"
    old_database(db_path, 3)
    before = db_path.read_bytes()

    result = vitrine("migrate", "--dry-run", data_dir=data)

    assert result.returncode == 0, result.stderr
    pending = [name for _, name, _ in migration_files()[3:]]
    assert pending and all(name in result.stdout for name in pending)
    assert migration_files()[0][1] not in result.stdout
    assert "schema version 3" in result.stdout
    assert db_path.read_bytes() == before
    assert not (data / "backups").exists()
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (3,)

    fresh = tmp_path / "fresh"
    result = vitrine("migrate", "--dry-run", data_dir=fresh)
    assert result.returncode == 0, result.stderr
    assert not (fresh / "vitrine.sqlite3").exists()
    assert f"{latest_version()} migration(s) would run" in result.stdout

    vitrine("migrate", data_dir=data)
    result = vitrine("migrate", "--dry-run", data_dir=data)
    assert "nothing to migrate" in result.stdout
