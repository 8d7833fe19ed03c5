"""Replays: a show's recording, finalised into one file and a poster when the show ends,
published by itself unless the admin turned that off for the show.

Files live in the data directory: `recordings/show-<id>/part-NNN.mp4` (written live by
media/recorder.py) and `replays/show-<id>.mp4` and `.jpg` (written here).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.catalog.shows import Show
from appliance.i18n.translate import N_
from appliance.replays.timeline import Timeline
from appliance.storage.db import Database
from media.finalize import Replay, cut, finalize
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
    title: str | None = None
    full_duration: float | None = None
    trim_start: float | None = None
    trim_end: float | None = None
    note: str | None = None
    created_at: float = 0.0
    width: int = 0
    height: int = 0
    timeline: Timeline = field(default_factory=lambda: Timeline(()))

    @property
    def trimmed(self) -> bool:
        return self.trim_start is not None


class ReplayError(ValueError):
    """An edit the replay cannot take; the message says why, for the admin."""


class ReplayStore:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.recordings = data_dir / "recordings"
        self.folder = data_dir / "replays"
        # One change at a time per replay: making it, trimming it, deleting it.
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

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

    def full(self, show_id: int) -> Path:
        """The untrimmed replay, kept while a trim is in place so it can be undone."""
        return self.folder / f"show-{show_id}.full.mp4"

    async def get(self, show_id: int) -> ReplayRow | None:
        row = await self.db.fetchone("SELECT * FROM replays WHERE show_id = ?", (show_id,))
        if row is None:
            return None
        return _row(row)

    async def make(self, show_id: int, note: str | None = None) -> ReplayRow | None:
        """Finalise the show's recording (after it ended). None when nothing was recorded.
        `note` is kept for the admin (e.g. why the recording stopped early)."""
        async with self._locks[show_id]:
            return await self._make(show_id, note)

    async def _make(self, show_id: int, note: str | None) -> ReplayRow | None:
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
            await asyncio.to_thread(self.folder.mkdir, mode=0o700, parents=True, exist_ok=True)
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
            timeline = await asyncio.to_thread(_timeline, made)
            await self.db.execute(
                "UPDATE replays SET status = 'ready', duration = ?, full_duration = ?, "
                "size = ?, width = ?, height = ?, published = ?, timeline = ?, "
                "trim_start = NULL, trim_end = NULL, cut_start = 0, note = ?, updated_at = ? "
                "WHERE show_id = ?",
                (
                    made.duration,
                    made.duration,
                    made.size,
                    made.width,
                    made.height,
                    int(bool(auto)),
                    json.dumps(timeline),
                    note,
                    time.time(),
                    show_id,
                ),
            )
            # The replay now holds everything the parts did: free their space.
            await asyncio.to_thread(self.full(show_id).unlink, missing_ok=True)
            await asyncio.to_thread(
                shutil.rmtree, self.recordings / f"show-{show_id}", ignore_errors=True
            )
        return await self.get(show_id)

    async def published(self, limit: int) -> list[tuple[Show, ReplayRow]]:
        """The `limit` newest published replays, newest show first, with their shows."""
        ids = [
            int(r["id"])
            for r in await self.db.fetchall(
                "SELECT s.id FROM shows s JOIN replays r ON r.show_id = s.id "
                "WHERE r.status = 'ready' AND r.published = 1 "
                "ORDER BY COALESCE(s.live_ended_at, s.starts_at) DESC, s.id DESC LIMIT ?",
                (limit,),
            )
        ]
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        shows = {
            int(r["id"]): Show.from_row(r)
            for r in await self.db.fetchall(f"SELECT * FROM shows WHERE id IN ({marks})", ids)
        }
        replays = {
            int(r["show_id"]): _row(r)
            for r in await self.db.fetchall(
                f"SELECT * FROM replays WHERE show_id IN ({marks})", ids
            )
        }
        return [(shows[i], replays[i]) for i in ids if i in shows and i in replays]

    async def pending(self) -> list[int]:
        """Shows whose replay a stopped server left half made, or never started. Parts are
        deleted once their replay is made, so only the recording folders left are looked
        at: one directory listing, not one per show."""
        folders = await asyncio.to_thread(_recorded_shows, self.recordings)
        if not folders:
            return []
        marks = ",".join("?" * len(folders))
        rows = await self.db.fetchall(
            f"SELECT s.id FROM shows s LEFT JOIN replays r ON r.show_id = s.id "
            f"WHERE s.id IN ({marks}) AND s.status = 'ended' "
            "AND (r.status IS NULL OR r.status = 'processing') ORDER BY s.id",
            folders,
        )
        found = []
        for row in rows:
            if await asyncio.to_thread(self.parts, int(row["id"])):
                found.append(int(row["id"]))
        return found

    async def auto_publish(self, show_id: int) -> bool:
        value = await self.db.fetchval(
            "SELECT replay_auto_publish FROM shows WHERE id = ?", (show_id,)
        )
        return bool(value)

    async def set_auto_publish(self, show_id: int, on: bool) -> None:
        await self.db.execute(
            "UPDATE shows SET replay_auto_publish = ? WHERE id = ?", (int(on), show_id)
        )

    async def rename(self, show_id: int, title: str | None) -> None:
        await self.db.execute(
            "UPDATE replays SET title = ?, updated_at = ? WHERE show_id = ?",
            (title or None, time.time(), show_id),
        )

    async def trim(self, show_id: int, start: float, end: float | None) -> ReplayRow:
        """Cut the replay to [start, end) seconds of the whole recording (end None: to its
        end), at keyframes, without re-encoding. The whole recording is kept beside it, so
        a later trim can widen it again; trimming to everything removes that copy."""
        async with self._locks[show_id]:
            replay = await self.get(show_id)
            if replay is None or replay.status != "ready":
                raise ReplayError(N_("This replay is not ready."))
            whole = float(replay.full_duration or replay.duration or 0.0)
            if start < 0 or (end is not None and end > whole + 0.5):
                raise ReplayError(N_("The trim must stay within the recording."))
            if end is not None and end - start < 1.0:
                raise ReplayError(N_("The trimmed replay must last at least one second."))
            if end is not None and end >= whole:
                end = None
            video, full = self.video(show_id), self.full(show_id)
            if not await asyncio.to_thread(full.exists):
                await asyncio.to_thread(video.replace, full)
            made = await asyncio.to_thread(cut, full, video, self.poster(show_id), start, end)
            whole_again = start <= 0 and end is None
            if whole_again:
                await asyncio.to_thread(full.unlink)
            await self.db.execute(
                "UPDATE replays SET duration = ?, size = ?, trim_start = ?, trim_end = ?, "
                "cut_start = ?, updated_at = ? WHERE show_id = ?",
                (
                    made.duration,
                    made.size,
                    None if whole_again else start,
                    None if whole_again else end,
                    0.0 if whole_again else made.start,
                    time.time(),
                    show_id,
                ),
            )
            got = await self.get(show_id)
            assert got is not None
            return got

    async def expire(self, keep_days: int, keep_gb: float, now: float) -> list[int]:
        """Retention: delete the replays older than `keep_days` (0: none), then, while
        replays take more than `keep_gb` (0: no limit), the oldest, unpublished ones first.
        Returns the shows whose replay went."""
        rows = await self.db.fetchall(
            "SELECT show_id, size, published, created_at FROM replays "
            "WHERE status != 'processing' ORDER BY published, created_at"
        )
        gone: list[int] = []
        kept: list[tuple[int, int]] = []
        for row in rows:
            if keep_days > 0 and row["created_at"] < now - keep_days * 86400:
                gone.append(int(row["show_id"]))
            else:
                kept.append((int(row["show_id"]), int(row["size"] or 0)))
        if keep_gb > 0:
            total = sum(size for _, size in kept)
            for show_id, size in kept:  # unpublished first, oldest first
                if total <= keep_gb * 1e9:
                    break
                gone.append(show_id)
                total -= size
        for show_id in gone:
            log.info("show %s: its replay is deleted by the retention settings", show_id)
            await self.delete(show_id)
        return gone

    async def delete(self, show_id: int) -> None:
        """The replay's files and row; the show stays."""
        async with self._locks[show_id]:
            await asyncio.to_thread(self.remove_files, show_id)
            await self.db.execute("DELETE FROM replays WHERE show_id = ?", (show_id,))

    async def set_published(self, show_id: int, published: bool) -> None:
        await self.db.execute(
            "UPDATE replays SET published = ?, updated_at = ? WHERE show_id = ?",
            (int(published), time.time(), show_id),
        )

    def remove_files(self, show_id: int) -> None:
        """Everything stored for the show's replay (blocking: call from a thread)."""
        shutil.rmtree(self.recordings / f"show-{show_id}", ignore_errors=True)
        for path in (self.video(show_id), self.poster(show_id), self.full(show_id)):
            path.unlink(missing_ok=True)


def _recorded_shows(recordings: Path) -> list[int]:
    """The shows with a recording folder (`show-<id>`) under `recordings`."""
    if not recordings.is_dir():
        return []
    names = (p.name for p in recordings.iterdir() if p.is_dir())
    return [int(n[5:]) for n in names if n.startswith("show-") and n[5:].isdigit()]


def _timeline(made: Replay) -> list[list[float]]:
    """[[wall clock of the part's start, its start in the replay, its end], ...]"""
    out = []
    for part, begin, end in made.segments:
        try:
            started = float(json.loads(part.with_suffix(".json").read_text())["started_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a part from before its start was written down: no pins on it
        out.append([round(started, 3), round(begin, 3), round(end, 3)])
    return out


def _row(row: Any) -> ReplayRow:
    return ReplayRow(
        show_id=row["show_id"],
        status=row["status"],
        duration=row["duration"],
        size=row["size"],
        published=bool(row["published"]),
        error=row["error"],
        title=row["title"],
        full_duration=row["full_duration"],
        trim_start=row["trim_start"],
        trim_end=row["trim_end"],
        note=row["note"],
        created_at=float(row["created_at"]),
        width=int(row["width"] or 0),
        height=int(row["height"] or 0),
        timeline=Timeline.of(row["timeline"], row["cut_start"], row["duration"] or 0.0),
    )
