"""What the admin home shows an operator first: is this server healthy and safe?

Version, uptime, disk free and what the replays use, whether recording works, whether
the site is served over HTTPS, and the last backup. Read from the same places as the
metrics; the disk walk runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.backups.copy import Backup, last_backup
from appliance.metrics.collect import DiskFigures, Sources, vitrine_version

if TYPE_CHECKING:
    from appliance.config import Config
    from appliance.live.bridge import LiveShows
    from appliance.storage.db import Database


@dataclass(frozen=True)
class OperatorStatus:
    version: str
    uptime_seconds: float
    disk_free_bytes: int
    replays_bytes: int
    replays: int
    min_free_bytes: int  # below it a show may not go live (0: no check)
    recording_on: bool
    recording_problems: list[tuple[int, str]]  # (live show, why its recording stopped)
    https: bool
    last_backup: Backup | None
    backup_every_hours: float


async def operator_status(
    config: Config,
    db: Database,
    live: LiveShows,
    sources: Sources,
    live_show_ids: list[int],
    request_https: bool,
) -> OperatorStatus:
    disk = await asyncio.to_thread(DiskFigures.read, config.data_dir)
    sources.disk = disk
    problems = [
        (show_id, problem)
        for show_id in live_show_ids
        if (problem := live.recording_problem(show_id)) is not None
    ]
    return OperatorStatus(
        version=vitrine_version(),
        uptime_seconds=time.time() - sources.started_at,
        disk_free_bytes=disk.free_bytes,
        replays_bytes=disk.replays_bytes,
        replays=disk.replays,
        min_free_bytes=int(config.replays.min_free_gb * 1e9),
        recording_on=config.media.record,
        recording_problems=problems,
        https=config.https or request_https,
        last_backup=await last_backup(db),
        backup_every_hours=config.backup.every_hours,
    )
