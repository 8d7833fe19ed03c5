"""The SQLite store: one writer connection, one reader connection, numbered migrations.

aiosqlite runs each connection on its own thread, so no query ever blocks the event
loop. Writes go through a single connection behind a lock, inside `BEGIN IMMEDIATE`
transactions, so a write either lands whole or not at all. Reads use a second
connection; WAL mode lets it read while the writer writes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
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
    for entry in resources.files("appliance.storage.migrations").iterdir():
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


# The data directory holds the session signing key, password hashes, stream keys and the
# conversion secret: only Vitrine's own user may read it. `vitrine` also sets umask 077;
# these modes hold even where it did not (tests, an embedding process).
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) readable by this user only; returns it."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty and 0600 unless it exists. SQLite gives a database's -wal and
    -shm the mode of the database file, so they follow."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
    except FileExistsError:
        pass
    return path


def loose_permissions(data_dir: Path) -> list[tuple[Path, int]]:
    """Paths in the data directory (itself, the database and what lies directly in it)
    that group or others may read, write or enter, with their modes."""
    if not data_dir.is_dir():
        return []
    paths = [data_dir, *sorted(data_dir.iterdir())]
    found = []
    for path in paths:
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)
        except OSError:
            continue
        if mode & 0o077 and not path.is_symlink():
            found.append((path, mode))
    return found


def warn_loose_permissions(data_dir: Path) -> None:
    """A WARNING for every data path others can reach, saying how to fix it."""
    for path, mode in loose_permissions(data_dir):
        fix = "chmod -R go-rwx" if path.is_dir() else "chmod 600"
        log.warning(
            "%s is readable by other users of this machine (mode %s) and holds secrets: "
            "run `%s %s`",
            path,
            oct(mode)[2:].rjust(4, "0"),
            fix,
            path,
        )


def backup_sync(source: Path, target: Path) -> None:
    """A consistent copy of a live database, using SQLite's online backup API."""
    private_dir(target.parent)
    private_file(target)
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
    private_dir(path.parent)
    private_file(path)
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
        # Executed and read to the end in one call on the connection's thread: a caller
        # cancelled between `execute` and the read (a request dropped, a task stopped)
        # would otherwise leave a stepped statement behind, and its read transaction
        # would show this connection an old snapshot of the database until the cursor
        # happened to be collected.
        return list(await self.reader.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

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
