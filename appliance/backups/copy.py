"""Making a backup folder from a data directory, while the server may be running.

The database is copied first with SQLite's online backup API (a consistent snapshot
even while the server writes), then the uploads and the replays: a replay or image the
snapshot names was complete before it, so the copy holds it. Files that vanish while
being copied (a replay deleted meanwhile) are skipped. `backup.json` says when the copy
was made and its schema version; restore reads it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.storage import db as dbmod

log = logging.getLogger(__name__)

DB_FILE = "vitrine.sqlite3"
MANIFEST = "backup.json"
FOLDERS = ("uploads", "replays")  # recordings of a show in progress become a replay later
STAMP = "%Y%m%d-%H%M%S"
LAST_BACKUP_KEY = "last_backup"  # the meta row the admin home reads


class BackupError(RuntimeError):
    """A backup could not be made; the message says why."""


@dataclass(frozen=True)
class Backup:
    folder: str
    made_at: float
    schema_version: int
    bytes: int


def default_folder(data_dir: Path) -> Path:
    return data_dir / "backups"


def stamped(parent: Path, now: float | None = None) -> Path:
    """A new folder name under `parent` from the time, never an existing one."""
    base = time.strftime(STAMP, time.localtime(now))
    target, n = parent / base, 1
    while target.exists():
        n += 1
        target = parent / f"{base}-{n}"
    return target


def _copy_file(src: str, dst: str) -> str:
    try:
        return str(shutil.copy2(src, dst))
    except FileNotFoundError:  # deleted while we copied: the snapshot may not name it
        log.info("backup: %s vanished during the copy; skipped", src)
        return dst


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def schema_version_of(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dbmod.current_version_sync(conn)
    finally:
        conn.close()


def make_backup(data_dir: Path, target: Path) -> Backup:
    """Copy the database, uploads and replays of `data_dir` into the new folder `target`
    (private to this user). Blocks: call it from a worker thread in the server."""
    source = data_dir / DB_FILE
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: pick a new folder")
    started = time.time()
    dbmod.private_dir(target)
    dbmod.backup_sync(source, target / DB_FILE)
    for name in FOLDERS:
        folder = data_dir / name
        if folder.is_dir():
            shutil.copytree(folder, target / name, copy_function=_copy_file, dirs_exist_ok=True)
    backup = Backup(
        folder=str(target.resolve()),
        made_at=started,
        schema_version=schema_version_of(target / DB_FILE),
        bytes=0,
    )
    backup = Backup(**{**asdict(backup), "bytes": _size(target)})
    (target / MANIFEST).write_text(json.dumps(asdict(backup), indent=2) + "\n")
    return backup


def record_last(data_dir: Path, backup: Backup) -> None:
    """Note the backup in the database's meta table, for the admin home (blocking)."""
    conn = sqlite3.connect(data_dir / DB_FILE, timeout=30)
    try:
        with conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (LAST_BACKUP_KEY, json.dumps(asdict(backup))),
            )
    finally:
        conn.close()


async def last_backup(db: dbmod.Database) -> Backup | None:
    """The last backup made of this database (by the schedule or `vitrine backup`)."""
    raw = await db.fetchval("SELECT value FROM meta WHERE key = ?", (LAST_BACKUP_KEY,))
    if raw is None:
        return None
    try:
        return Backup(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def _made_at(folder: Path) -> float:
    try:
        return float(json.loads((folder / MANIFEST).read_text())["made_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return os.stat(folder / MANIFEST).st_mtime


def prune(parent: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest backups in `parent`; returns what was deleted.
    Only folders this module made (a manifest inside) are ever touched."""
    if keep <= 0 or not parent.is_dir():
        return []
    ours = sorted(
        (p for p in parent.iterdir() if p.is_dir() and (p / MANIFEST).is_file()),
        key=lambda p: (_made_at(p), p.name),
    )
    doomed = ours[: max(0, len(ours) - keep)]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed
