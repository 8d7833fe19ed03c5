"""Replays: a show's recording, finalised into one file and a poster when the show ends,
published by itself unless the admin turned that off for the show.

Files live in the data directory: `recordings/show-<id>/part-NNN.mp4` (written live by
media/recorder.py) and `replays/show-<id>.mp4` and `.jpg` (written here).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.db import Database
from media.finalize import finalize
from media.transcode import ensure_h264

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayRow:
    show_id: int
    status: str
    duration: float | None
    size: int | None
    published: bool
    error: str | None


class ReplayStore:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.recordings = data_dir / "recordings"
        self.folder = data_dir / "replays"

    def parts(self, show_id: int) -> list[Path]:
        """The recording's parts by number: `part-NNN.mp4` (H264) or `.mkv` (VP8)."""
        found = [
            path
            for path in (self.recordings / f"show-{show_id}").glob("part-*")
            if path.suffix in (".mp4", ".mkv") and path.stem[5:].isdigit()
        ]
        return sorted(found, key=lambda path: int(path.stem[5:]))

    def video(self, show_id: int) -> Path:
        return self.folder / f"show-{show_id}.mp4"

    def poster(self, show_id: int) -> Path:
        return self.folder / f"show-{show_id}.jpg"

    async def get(self, show_id: int) -> ReplayRow | None:
        row = await self.db.fetchone("SELECT * FROM replays WHERE show_id = ?", (show_id,))
        if row is None:
            return None
        return ReplayRow(
            row["show_id"],
            row["status"],
            row["duration"],
            row["size"],
            bool(row["published"]),
            row["error"],
        )

    async def make(self, show_id: int) -> ReplayRow | None:
        """Finalise the show's recording (after it ended). None when nothing was recorded."""
        parts = await asyncio.to_thread(self.parts, show_id)
        if not parts:
            return None
        now = time.time()
        auto = await self.db.fetchval(
            "SELECT replay_auto_publish FROM shows WHERE id = ?", (show_id,)
        )
        await self.db.execute(
            "INSERT INTO replays (show_id, status, created_at, updated_at) "
            "VALUES (?, 'processing', ?, ?) ON CONFLICT (show_id) DO UPDATE SET "
            "status = 'processing', error = NULL, updated_at = excluded.updated_at",
            (show_id, now, now),
        )
        try:
            await asyncio.to_thread(self.folder.mkdir, parents=True, exist_ok=True)
            parts = await ensure_h264(parts)  # VP8 parts: one H264 transcode, off to the side
            made = await asyncio.to_thread(
                finalize, parts, self.video(show_id), self.poster(show_id)
            )
        except Exception as exc:
            log.exception("show %s: the replay could not be made", show_id)
            await self.db.execute(
                "UPDATE replays SET status = 'failed', error = ?, updated_at = ? WHERE show_id = ?",
                (str(exc)[:500] or type(exc).__name__, time.time(), show_id),
            )
        else:
            await self.db.execute(
                "UPDATE replays SET status = 'ready', duration = ?, size = ?, width = ?, "
                "height = ?, published = ?, updated_at = ? WHERE show_id = ?",
                (
                    made.duration,
                    made.size,
                    made.width,
                    made.height,
                    int(bool(auto)),
                    time.time(),
                    show_id,
                ),
            )
        return await self.get(show_id)

    async def set_published(self, show_id: int, published: bool) -> None:
        await self.db.execute(
            "UPDATE replays SET published = ?, updated_at = ? WHERE show_id = ?",
            (int(published), time.time(), show_id),
        )

    def remove_files(self, show_id: int) -> None:
        """Everything stored for the show's replay (blocking: call from a thread)."""
        shutil.rmtree(self.recordings / f"show-{show_id}", ignore_errors=True)
        for path in (self.video(show_id), self.poster(show_id)):
            path.unlink(missing_ok=True)
