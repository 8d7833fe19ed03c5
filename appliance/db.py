"""The SQLite store: one writer connection, one reader connection, numbered migrations.

aiosqlite runs each connection on its own thread, so no query ever blocks the event
loop. Writes go through a single connection behind a lock, inside `BEGIN IMMEDIATE`
transactions, so a write either lands whole or not at all. Reads use a second
connection; WAL mode lets it read while the writer writes.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

Row = sqlite3.Row


class SchemaTooNew(RuntimeError):
    """The database was written by a newer Vitrine than this one."""


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every numbered migration shipped with the code."""
    found = []
    for entry in resources.files("appliance.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations are not numbered 1..n without gaps: {versions}")
    return found


def latest_version() -> int:
    return len(migration_files())


def _connect_sync(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def current_version_sync(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def backup_sync(source: Path, target: Path) -> None:
    """A consistent copy of a live database, using SQLite's online backup API."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)
    finally:
        dst.close()
        src.close()


def migrate_sync(path: Path, backup_dir: Path | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied.

    Refuses a database newer than the code. Backs the database up first when it
    already holds data and migrations are pending.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    migrations = migration_files()
    conn = _connect_sync(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        version = current_version_sync(conn)
        if version > len(migrations):
            raise SchemaTooNew(
                f"{path} has schema version {version} but this Vitrine knows only up to "
                f"{len(migrations)}: upgrade Vitrine, or restore a backup"
            )
        pending = [m for m in migrations if m[0] > version]
        if pending and version > 0 and backup_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target = backup_dir / f"before-migration-{version:04d}-{stamp}.sqlite3"
            backup_sync(path, target)
            log.info("backed up the database to %s before migrating", target)
        applied = []
        for number, name, sql in pending:
            # executescript commits first; the migration is wrapped in its own
            # transaction so a failure leaves the previous version intact.
            conn.executescript(
                "BEGIN IMMEDIATE;\n"
                + sql
                + f"\nINSERT INTO schema_migrations (version, name, applied_at) "
                f"VALUES ({number}, '{name}', strftime('%s','now'));\nCOMMIT;"
            )
            applied.append(name)
        return applied
    except Exception:
        if conn.in_transaction:
            conn.rollback()
        raise
    finally:
        conn.close()


class Database:
    """Async access to the Vitrine database file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        self._writer = await self._open_connection()
        self._reader = await self._open_connection()
        await self._reader.execute("PRAGMA query_only = ON")

    async def _open_connection(self) -> aiosqlite.Connection:
        conn = await aiosqlite.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA synchronous = NORMAL")
        await conn.execute("PRAGMA busy_timeout = 30000")
        return conn

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @property
    def reader(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("database is not open")
        return self._reader

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        async with self.reader.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        async with self.reader.execute(sql, params) as cur:
            row: Row | None = await cur.fetchone()
            return row

    async def fetchval(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = await self.fetchone(sql, params)
        return None if row is None else row[0]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: committed whole on success, rolled back on error."""
        if self._writer is None:
            raise RuntimeError("database is not open")
        async with self._write_lock:
            conn = self._writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own transaction; returns lastrowid."""
        async with self.transaction() as conn:
            cur = await conn.execute(sql, params)
            return int(cur.lastrowid or 0)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)
