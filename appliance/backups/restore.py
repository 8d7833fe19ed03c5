"""Putting a backup back: check the copy, refuse a live data directory, keep the old aside.

A copy is restored only when SQLite finds it whole (`PRAGMA integrity_check`) and its
schema is one this Vitrine can open (older ones are migrated at the next start, after a
backup of their own). What the restore replaces (database, uploads, replays, recordings)
is moved into `replaced-STAMP/` in the data directory, never deleted.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.backups.copy import DB_FILE, FOLDERS, STAMP
from appliance.backups.running import serving
from appliance.storage import db as dbmod

# What a data directory's shop is made of; the rest (backups, the LAN certificate, other
# replaced-* folders) stays where it is.
REPLACED = (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm", *FOLDERS, "recordings")


class RestoreError(RuntimeError):
    """The backup cannot be restored here; the message says why and what to do."""


@dataclass(frozen=True)
class Restored:
    schema_version: int
    aside: Path | None  # where the replaced data went, if there was any


def check_backup(folder: Path) -> int:
    """The backup's schema version, once its database is found whole and known."""
    path = folder / DB_FILE
    if not path.is_file():
        raise RestoreError(f"{folder} holds no {DB_FILE}: not a Vitrine backup")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            version = dbmod.current_version_sync(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise RestoreError(f"{path} is not a readable SQLite database ({exc})") from None
    if result != ["ok"]:
        raise RestoreError(f"{path} is damaged: {'; '.join(map(str, result[:5]))}")
    latest = dbmod.latest_version()
    if version == 0:
        raise RestoreError(f"{path} has no Vitrine schema: not a Vitrine backup")
    if version > latest:
        raise RestoreError(
            f"{path} has schema version {version} but this Vitrine knows only up to "
            f"{latest}: restore it with a newer Vitrine"
        )
    return version


def restore(folder: Path, data_dir: Path, now: float | None = None) -> Restored:
    """Replace the shop in `data_dir` with the backup in `folder` (blocking)."""
    folder, data_dir = folder.resolve(), data_dir.resolve()
    version = check_backup(folder)
    if (reason := serving(data_dir)) is not None:
        raise RestoreError(f"{reason}: stop it before restoring into {data_dir}")
    dbmod.private_dir(data_dir)
    present = [data_dir / name for name in REPLACED if (data_dir / name).exists()]
    aside: Path | None = None
    if present:
        aside = data_dir / f"replaced-{time.strftime(STAMP, time.localtime(now))}"
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
        dbmod.private_dir(aside)
        for path in present:
            path.rename(aside / path.name)
    # Through the backup API, not a file copy: whatever journal the copy has, the new
    # file holds all of it.
    dbmod.backup_sync(folder / DB_FILE, data_dir / DB_FILE)
    for name in FOLDERS:
        if (folder / name).is_dir():
            shutil.copytree(folder / name, data_dir / name)
    return Restored(version, aside)
