"""Backups made by the server every few hours, off the event loop.

One task sleeps until the next backup is due (counted from the last one recorded in the
database, so a restart does not make an extra one), then copies in a worker thread,
records it for the admin home, prunes to `backup.keep`, and runs `backup.after_command`
with the folder as its last argument (an off-site copy: rsync, rclone, restic...). The
command is time-limited and its outcome logged; a failure never stops the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import time
from pathlib import Path

from appliance.backups.copy import (
    Backup,
    default_folder,
    last_backup,
    make_backup,
    prune,
    record_last,
    stamped,
)
from appliance.storage.db import Database

log = logging.getLogger(__name__)

AFTER_COMMAND_SECONDS = 3600.0  # an off-site copy of a large shop may take a while
RETRY_SECONDS = 600.0  # after a failed backup


# How long stopping the server waits for a backup under way (shutdown must stay quick).
CLOSE_WAIT_SECONDS = 3.0


class BackupSchedule:
    def __init__(
        self,
        db: Database,
        data_dir: Path,
        every_hours: float,
        keep: int,
        folder: str = "",
        after_command: str = "",
        after_timeout: float = AFTER_COMMAND_SECONDS,
    ) -> None:
        self.db = db
        self.data_dir = data_dir
        self.every = every_hours * 3600
        self.keep = keep
        self.folder = Path(folder).expanduser() if folder else default_folder(data_dir)
        self.after_command = shlex.split(after_command)
        self.after_timeout = after_timeout
        self._task: asyncio.Task[None] | None = None
        self._running: asyncio.Future[Backup] | None = None
        self.made = 0  # backups this process made

    @property
    def enabled(self) -> bool:
        return self.every > 0

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run_forever())

    async def close(self) -> None:
        """Stop the schedule; a backup under way gets a few seconds to finish whole (its
        after-command included) instead of being cut in the middle."""
        if self._task is not None:
            if self._running is not None and not self._running.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._running), CLOSE_WAIT_SECONDS)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run_forever(self) -> None:
        last = await last_backup(self.db)
        due = (last.made_at + self.every) if last is not None else time.time()
        while True:
            await asyncio.sleep(max(0.0, due - time.time()))
            try:
                self._running = asyncio.ensure_future(self.run_once())
                await asyncio.shield(self._running)
                due = time.time() + self.every
            except Exception:
                log.exception("scheduled backup failed; trying again in %d s", RETRY_SECONDS)
                due = time.time() + min(self.every, RETRY_SECONDS)

    async def run_once(self) -> Backup:
        """One backup now: copy, record, prune, then the after-command."""
        target = stamped(self.folder)
        backup = await asyncio.to_thread(make_backup, self.data_dir, target)
        await asyncio.to_thread(record_last, self.data_dir, backup)
        self.made += 1
        removed = await asyncio.to_thread(prune, self.folder, self.keep)
        log.info(
            "backup made in %s (%.1f MB)%s",
            backup.folder,
            backup.bytes / 1e6,
            f"; {len(removed)} older one(s) deleted" if removed else "",
        )
        if self.after_command:
            await self.run_after(Path(backup.folder))
        return backup

    async def run_after(self, folder: Path) -> int | None:
        """Run the after-command on `folder`; its exit status, None when it was stopped."""
        argv = [*self.after_command, str(folder)]
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: a timeout stops it whole
            )
        except OSError as exc:
            log.error("backup.after_command could not start (%s): %s", argv[0], exc)
            return None
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.after_timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # the children holding its output too
            await process.wait()
            log.error(
                "backup.after_command %s was stopped after %.1f s", argv[0], self.after_timeout
            )
            return None
        tail = output.decode(errors="replace").strip()[-2000:]
        if process.returncode == 0:
            log.info("backup.after_command %s finished%s", argv[0], f": {tail}" if tail else "")
        else:
            log.error(
                "backup.after_command %s failed with status %s: %s",
                argv[0],
                process.returncode,
                tail,
            )
        return process.returncode
