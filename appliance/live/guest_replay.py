"""The replay of a show that had a guest: once the host's replay is made, the guest's
recording is drawn into it as the stage was live (media/compose.py, a child process at
the lowest priority). The host's replay stays as it is until the composed one is whole.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from appliance.replays.store import ReplayRow, ReplayStore
from appliance.storage.db import Database
from media.compose import compose_in_child
from media.finalize import cut

log = logging.getLogger(__name__)

WAIT_SECONDS = 6 * 3600  # longest the host's replay is waited for (a long VP8 transcode)
POLL_SECONDS = 1.0
COMPOSED = "composed.mp4"  # the child's output, whole once it exists (in the guest's folder)
SWAPPING = "swapping"  # written before the composed file replaces the host's replay


class GuestReplays:
    def __init__(self, db: Database, replays: ReplayStore) -> None:
        self.db = db
        self.replays = replays
        self._running: set[int] = set()  # shows being composed now

    async def _replay_made(self, show_id: int) -> bool:
        """Wait until the host's replay is made (True) or cannot be (False)."""
        waited = 0.0
        while waited < WAIT_SECONDS:
            row = await self.replays.get(show_id)
            if row is not None and row.status != "processing":
                return row.status == "ready"
            if row is None and waited > 30 and not self.replays.parts(show_id):
                return False  # nothing was recorded of the host
            await asyncio.sleep(POLL_SECONDS)
            waited += POLL_SECONDS
        return False

    async def unfinished(self, record_dir: Path) -> list[int]:
        """Ended shows whose guest recording is still there and whose composition never
        finished: the server stopped (or was killed) before it did. A failed one is not
        tried again by itself: its error is shown, and its recording kept."""
        ids = await asyncio.to_thread(_recorded_shows, record_dir)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self.db.fetchall(
            f"SELECT s.id FROM shows s LEFT JOIN guest_compositions g ON g.show_id = s.id "
            f"WHERE s.id IN ({marks}) AND s.status = 'ended' "
            "AND (g.status IS NULL OR g.status = 'processing') ORDER BY s.id",
            ids,
        )
        return [int(row["id"]) for row in rows]

    async def compose_when_ready(self, show_id: int, folder: Path) -> None:
        if show_id in self._running:
            return
        self._running.add(show_id)
        try:
            await self._compose_when_ready(show_id, folder)
        finally:
            self._running.discard(show_id)

    async def _compose_when_ready(self, show_id: int, folder: Path) -> None:
        parts = await asyncio.to_thread(_parts, folder)
        stage = await self.db.fetchall(
            "SELECT at, guest, layout FROM guest_stage WHERE show_id = ? ORDER BY at, id",
            (show_id,),
        )
        if not parts or not any(row["guest"] for row in stage):
            # No guest was on the stage: the host's replay is the replay.
            await asyncio.to_thread(shutil.rmtree, folder, True)
            return
        if not await self._replay_made(show_id):
            return
        await self._status(show_id, "processing")
        began = time.monotonic()
        async with self.replays._locks[show_id]:  # no trim or delete meanwhile
            row = await self.replays.get(show_id)
            if row is None or row.status != "ready":
                return
            # A trimmed replay: the whole recording kept beside it is composed, then cut
            # again at the same times, so the trim can still be widened or undone.
            target = self.replays.full(show_id) if row.trimmed else self.replays.video(show_id)
            composed, swapping = folder / COMPOSED, folder / SWAPPING
            # A run stopped after it moved the composed replay in must not compose it
            # again (the guest would be drawn twice): SWAPPING says the move began.
            if not await asyncio.to_thread(swapping.exists):
                if not await asyncio.to_thread(composed.exists):
                    spec = {
                        "main": str(target),
                        "timeline": [list(s) for s in row.timeline.segments],
                        "guest_parts": parts,
                        "stage": [[r["at"], bool(r["guest"]), r["layout"]] for r in stage],
                        "out": str(composed),
                    }
                    spec_path = folder / "compose.json"
                    await asyncio.to_thread(spec_path.write_text, json.dumps(spec))
                    try:
                        await compose_in_child(spec_path)
                    except Exception as exc:
                        log.warning(
                            "show %s: the guest could not be drawn into the replay: %s",
                            show_id,
                            exc,
                        )
                        await self._status(show_id, "failed", str(exc)[:500])
                        return
                await asyncio.to_thread(swapping.touch)
            if await asyncio.to_thread(composed.exists):
                await asyncio.to_thread(composed.replace, target)
            await self._settle(show_id, row)
        took = time.monotonic() - began
        # The guest's recording is in the replay now: deleted, as the host's parts are.
        await asyncio.to_thread(shutil.rmtree, folder, True)
        log.info("show %s: the replay with its guest was composed in %.1f s", show_id, took)
        await self._status(show_id, "ready", seconds=took)

    async def _settle(self, show_id: int, row: ReplayRow) -> None:
        """The replay's row after the composed file took its place (a trim cut again)."""
        video = self.replays.video(show_id)
        if row.trimmed:
            assert row.trim_start is not None
            made = await asyncio.to_thread(
                cut,
                self.replays.full(show_id),
                video,
                self.replays.poster(show_id),
                row.trim_start,
                row.trim_end,
            )
            await self.db.execute(
                "UPDATE replays SET duration = ?, size = ?, cut_start = ?, updated_at = ? "
                "WHERE show_id = ?",
                (made.duration, made.size, made.start, time.time(), show_id),
            )
            return
        size = (await asyncio.to_thread(video.stat)).st_size
        await self.db.execute(
            "UPDATE replays SET size = ?, updated_at = ? WHERE show_id = ?",
            (size, time.time(), show_id),
        )

    async def _status(
        self, show_id: int, status: str, error: str | None = None, seconds: float | None = None
    ) -> None:
        await self.db.execute(
            "INSERT INTO guest_compositions (show_id, status, seconds, error, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (show_id) DO UPDATE SET status = excluded.status, "
            "seconds = excluded.seconds, error = excluded.error, updated_at = excluded.updated_at",
            (show_id, status, seconds, error, time.time()),
        )

    async def status(self, show_id: int) -> dict[str, Any] | None:
        row = await self.db.fetchone(
            "SELECT status, seconds, error FROM guest_compositions WHERE show_id = ?", (show_id,)
        )
        return dict(row) if row is not None else None


def _parts(folder: Path) -> list[list[Any]]:
    """The guest's recording parts with the wall clock of their start, in order."""
    found = []
    for path in sorted(folder.glob("part-*"), key=lambda p: p.stem):
        if path.suffix not in (".mp4", ".mkv"):
            continue
        try:
            started = float(json.loads(path.with_suffix(".json").read_text())["started_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append([str(path), started])
    return found


def _recorded_shows(record_dir: Path) -> list[int]:
    """The show ids of the guest recording folders (`show-<id>`) left in `record_dir`."""
    if not record_dir.is_dir():
        return []
    found = []
    for path in record_dir.glob("show-*"):
        suffix = path.name.removeprefix("show-")
        if path.is_dir() and suffix.isdigit():
            found.append(int(suffix))
    return sorted(found)
