from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.accounts.security import SlidingWindowLimiter, hash_password, verify_password
from appliance.storage import db as dbmod


async def test_fresh_database_is_migrated_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    assert dbmod.migrate_sync(path) == [name for _v, name, _sql in dbmod.migration_files()]
    database = dbmod.Database(path)
    await database.open()
    try:
        assert await database.fetchval("PRAGMA journal_mode") == "wal"
        assert await database.fetchval("PRAGMA foreign_keys") == 1
        assert (
            await database.fetchval("SELECT MAX(version) FROM schema_migrations")
            == dbmod.latest_version()
        )
        with pytest.raises(sqlite3.IntegrityError):
            await database.execute("INSERT INTO show_products VALUES (1, 2, 0)")
        # The reader connection cannot write.
        with pytest.raises(sqlite3.OperationalError):
            await database.reader.execute("DELETE FROM meta")
    finally:
        await database.close()


async def test_failed_transaction_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    dbmod.migrate_sync(path)
    database = dbmod.Database(path)
    await database.open()
    try:
        with pytest.raises(sqlite3.IntegrityError):
            async with database.transaction() as conn:
                await conn.execute("INSERT INTO meta VALUES ('a', '1')")
                await conn.execute("INSERT INTO meta VALUES ('a', '2')")
        assert await database.fetchall("SELECT * FROM meta") == []
        await database.execute("INSERT INTO meta VALUES ('b', '1')")
        assert await database.fetchval("SELECT value FROM meta WHERE key = 'b'") == "1"
    finally:
        await database.close()


def test_pending_migration_backs_up_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "v.sqlite3"
    dbmod.migrate_sync(path, tmp_path / "backups")
    assert not (tmp_path / "backups").exists(), "nothing to back up on a fresh database"
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO meta VALUES ('marker', 'before')")
    shipped = dbmod.migration_files()
    extra = (len(shipped) + 1, "9999_test.sql", "CREATE TABLE extra (id INTEGER PRIMARY KEY);")
    monkeypatch.setattr(dbmod, "migration_files", lambda: [*shipped, extra])
    assert dbmod.migrate_sync(path, tmp_path / "backups") == ["9999_test.sql"]
    [backup] = (tmp_path / "backups").iterdir()
    with sqlite3.connect(backup) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == len(
            shipped
        )
        assert conn.execute("SELECT value FROM meta").fetchone()[0] == "before"


def test_broken_migration_keeps_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.sqlite3"
    dbmod.migrate_sync(path)
    shipped = dbmod.migration_files()
    broken = (
        len(shipped) + 1,
        "9999_broken.sql",
        "CREATE TABLE ok_part (id INTEGER);\nCREATE TABLE users (x);",
    )
    monkeypatch.setattr(dbmod, "migration_files", lambda: [*shipped, broken])
    with pytest.raises(sqlite3.OperationalError):
        dbmod.migrate_sync(path)
    with sqlite3.connect(path) as conn:
        assert dbmod.current_version_sync(conn) == len(shipped)
        assert (
            conn.execute("SELECT name FROM sqlite_master WHERE name = 'ok_part'").fetchone() is None
        )


def test_password_hashing() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("scrypt$") and "correct" not in stored
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("x", "garbage")
    assert hash_password("same") != hash_password("same")


def test_sliding_window_limiter() -> None:
    limiter = SlidingWindowLimiter(limit=3, window=10, max_keys=4)
    for t in (0, 1, 2):
        assert not limiter.blocked("k", now=t)
        limiter.hit("k", now=t)
    assert limiter.blocked("k", now=5)
    assert not limiter.blocked("k", now=10.5)  # the first hit left the window
    for i in range(10):
        limiter.hit(f"other{i}", now=20)
    assert len(limiter._hits) <= 4
