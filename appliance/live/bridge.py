"""Live shows: joins the media plane's events to the shows' lifecycle in the database.

- A publisher connecting makes a scheduled show live.
- A publisher dropping (or stopping) starts a grace period; if nobody publishes again
  before it ends, the show ends. A phone that switches networks comes back well within it.
- "End show" ends it at once and closes every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCIceServer

from appliance.catalog import shows
from appliance.config import Config
from appliance.replays.store import ReplayStore
from appliance.storage.db import Database
from appliance.turn import rest_credentials
from media.plane import MediaPlane, MediaSettings
from media.workers.capacity import default_max_viewers, usable_cpus, workers_for

log = logging.getLogger(__name__)


def ice_servers(config: Config, for_server: bool = False) -> list[dict[str, Any]]:
    """The STUN/TURN servers as browsers want them (RTCIceServer dictionaries).

    With media.turn_secret, each call issues fresh TURN credentials (call it per page);
    the server's own peer connections then get no TURN server: their credentials would
    expire, and the server is reachable without one."""
    media = config.media
    servers: list[dict[str, Any]] = []
    for url in filter(None, (u.strip() for u in media.ice_servers.split(","))):
        entry: dict[str, Any] = {"urls": url}
        if url.startswith("turn") and media.turn_secret:
            if for_server:
                continue
            entry["username"], entry["credential"] = rest_credentials(
                media.turn_secret, media.turn_ttl_seconds
            )
        elif url.startswith("turn") and media.turn_username:
            entry["username"] = media.turn_username
            entry["credential"] = media.turn_password
        servers.append(entry)
    return servers


def max_viewers(config: Config) -> int:
    """media.max_viewers, or when it is 0 the figure the relay holds on this machine
    (media.workers.capacity)."""
    if config.media.max_viewers > 0:
        return config.media.max_viewers
    cpus = usable_cpus()
    figure = default_max_viewers(relay_workers(config), cpus)
    log.info(
        "media.max_viewers: %d per show (%d relay workers, %d cores)",
        figure,
        relay_workers(config),
        cpus,
    )
    return figure


def relay_workers(config: Config) -> int:
    """media.workers, with -1 (the default) made one per core (media.workers.capacity)."""
    return workers_for(config.media.workers, usable_cpus())


class LiveShows:
    def __init__(self, config: Config, db: Database, replays: ReplayStore) -> None:
        self.config = config
        self.db = db
        self.grace = float(config.media.grace_seconds)
        self.plane = MediaPlane(
            MediaSettings(
                ice_servers=[RTCIceServer(**s) for s in ice_servers(config, for_server=True)],
                host_addresses=[
                    a.strip() for a in config.media.host_addresses.split(",") if a.strip()
                ],
                public_ip=config.media.public_ip,
                max_viewers=max_viewers(config),
                max_viewers_per_key=config.limits.whep_sessions_per_address,
                ice_connect_seconds=float(config.media.ice_connect_seconds),
                record_dir=config.data_dir / "recordings" if config.media.record else None,
                hls=config.media.hls,
                workers=relay_workers(config),
            ),
            on_event=self._on_event,
        )
        self.replays = replays
        self.ice_servers_for_links = ice_servers(config)
        # Told (show id, status, live since) whenever a show goes live or ends.
        self.status_listeners: list[Callable[[int, str, float | None], None]] = []
        self._grace_timers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._storage_task: asyncio.Future[None] | None = None
        self._replay_tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        await self.plane.start()
        # Shows left live by a stopped server get the same grace as a dropped phone.
        for show in await shows.list_shows(self.db, "live"):
            self._start_grace(str(show.id))
        # Replays a stopped server left half made are made again.
        for show_id in await self.replays.pending():
            self._spawn(self._make_replay(show_id, None), replay=True)
        self._storage_task = asyncio.ensure_future(self._keep_storage())

    async def _keep_storage(self) -> None:
        """Retention, at start and then every hour (and after each new replay)."""
        while True:
            await self._expire()
            await asyncio.sleep(3600)

    async def _expire(self) -> None:
        settings = self.config.replays
        if settings.keep_days <= 0 and settings.keep_gb <= 0:
            return
        try:
            await self.replays.expire(settings.keep_days, settings.keep_gb, time.time())
        except Exception:
            log.exception("applying the replay retention failed")

    async def _make_replay(self, show_id: int, note: str | None) -> None:
        await self.replays.make(show_id, note)
        await self._expire()

    def free_gb(self) -> float:
        folder = self.config.data_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        return shutil.disk_usage(folder).free / 1e9

    def go_live_refusal(self, show: shows.Show) -> str | None:
        """Why `show` may not go live now, or None. Only a show about to go live with
        recording on is checked: one already live goes on whatever the disk says."""
        needed = self.config.replays.min_free_gb
        if show.status != "scheduled" or not self.config.media.record or needed <= 0:
            return None
        free = self.free_gb()
        if free >= needed:
            return None
        return (
            f"not enough free disk space to record the show: {free:.1f} GB free, "
            f"{needed:g} GB needed (setting replays.min_free_gb). Free some space or delete "
            "old replays."
        )

    def recording_problem(self, show_id: int) -> str | None:
        """Why the live show's recording stopped, if it did (e.g. the disk is full)."""
        recorder = self.plane.recording(str(show_id))
        if recorder is None or recorder.error is None:
            return None
        return recorder.error

    async def close(self) -> None:
        for timer in self._grace_timers.values():
            timer.cancel()
        if self._storage_task is not None:
            self._storage_task.cancel()
            await asyncio.gather(self._storage_task, return_exceptions=True)
        # A replay being made (a VP8 transcode can take minutes) is not waited for: it
        # stays 'processing' and is made again at the next start.
        for task in self._replay_tasks:
            task.cancel()
        await self.plane.close()
        pending = [*self._grace_timers.values(), *self._tasks]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _spawn(self, coro: Any, replay: bool = False) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if replay:
            self._replay_tasks.add(task)
            task.add_done_callback(self._replay_tasks.discard)

    def _on_event(self, show: str, event: str) -> None:
        log.info("show %s: %s", show, event.replace("_", " "))
        if event == "publishing":
            self._cancel_grace(show)
            self._spawn(self._went_live(int(show)))
        elif event in ("publisher_lost", "publisher_stopped"):
            self._start_grace(show)

    async def _went_live(self, show_id: int) -> None:
        show = await shows.get_show(self.db, show_id)
        if show is not None and show.status == "scheduled":
            await shows.go_live(self.db, show_id)
            await self._tell(show_id)

    async def _tell(self, show_id: int) -> None:
        show = await shows.get_show(self.db, show_id)
        if show is not None:
            for listener in self.status_listeners:
                listener(show.id, show.status, show.live_started_at)

    def _cancel_grace(self, show: str) -> None:
        timer = self._grace_timers.pop(show, None)
        if timer is not None:
            timer.cancel()

    def _start_grace(self, show: str) -> None:
        self._cancel_grace(show)
        self._grace_timers[show] = asyncio.ensure_future(self._grace(show))

    async def _grace(self, show: str) -> None:
        log.info("show %s: waiting %.0f s for its publisher", show, self.grace)
        await asyncio.sleep(self.grace)
        self._grace_timers.pop(show, None)
        if not self.plane.has_publisher(show):
            log.info("show %s: no publisher for %.0f s, ending it", show, self.grace)
            await self.end(int(show))

    async def end(self, show_id: int) -> None:
        """End a show now: status, publisher and viewers; then its replay is made."""
        self._cancel_grace(str(show_id))
        with contextlib.suppress(shows.BadTransition):
            await shows.end_show(self.db, show_id)
        await self._tell(show_id)
        problem = self.recording_problem(show_id)
        await self.plane.end_show(str(show_id))
        note = f"The recording stopped before the end of the show: {problem}" if problem else None
        self._spawn(self._make_replay(show_id, note), replay=True)

    def status(self, show_id: int) -> dict[str, Any]:
        """Whether the show is on air, and how many viewers are watching its video (their
        connection is up: a session still connecting, or one that never will, is not)."""
        key = str(show_id)
        return {
            "publishing": self.plane.is_publishing(key),
            "viewers": self.plane.viewer_count(key),
        }
