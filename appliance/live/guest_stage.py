"""A guest on the live: the guest's own relay, the stage viewers see, and its changes.

The guest publishes over WHIP to a second media plane (`GuestPlane`), keyed by the same
show id: its own relay, recording (`recordings/guest/show-<id>/`) and HLS rendition.
Viewers open a second WHEP session (or HLS) for it while the stage says a guest is on,
and draw the two videos by CSS: the server never decodes live video. The stage
(`{"type": "stage", "guest": bool, "layout": "side" | "inset"}`) reaches the live room
through `listeners`; each change is stored with its wall-clock time, which the replay's
composition follows (appliance/live/guest_replay.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc.rtp import RtpPacket

from appliance.live import guests
from appliance.live.bridge import LiveShows
from appliance.live.guest_replay import GuestReplays
from appliance.storage.db import Database
from media import aiortc_glue as glue
from media.plane import MediaPlane

log = logging.getLogger(__name__)

LAYOUTS = ("side", "inset")


@dataclass
class Stage:
    guest: bool = False  # a guest is publishing and shown
    layout: str = "side"
    muted: bool = False  # the guest's sound is not forwarded (nor recorded)

    def message(self) -> dict[str, Any]:
        return {"type": "stage", "guest": self.guest, "layout": self.layout}


class GuestPlane(MediaPlane):
    """A media plane whose publishers' sound can be held back per show (the host's mute)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.muted: set[str] = set()

    async def publish(self, show: str, offer: bytes) -> tuple[str, str]:
        session, answer = await super().publish(show, offer)
        relay = self.relays.get(show)
        publisher = relay.publisher if relay else None
        receiver = publisher.receivers.get("audio") if publisher else None
        if receiver is not None and receiver.on_rtp is not None:
            forward = receiver.on_rtp

            def held(r: glue.ForwardingReceiver, packet: RtpPacket, arrived: int) -> None:
                if show not in self.muted:
                    forward(r, packet, arrived)

            receiver.on_rtp = held
        return session, answer


class Guests:
    def __init__(self, db: Database, live: LiveShows, link_hours: float) -> None:
        self.db = db
        self.live = live
        self.link_hours = link_hours
        settings = live.plane.settings
        record_dir = settings.record_dir / "guest" if settings.record_dir else None
        self.plane = GuestPlane(
            # Its relay workers start when a guest first joins, not with the server.
            dataclasses.replace(settings, record_dir=record_dir, workers_on_first_use=True),
            on_event=self._on_event,
        )
        self.replays = GuestReplays(db, live.replays)
        self.stages: dict[int, Stage] = {}
        # Told (show id, stage message) at each change: the live room broadcasts it.
        self.listeners: list[Callable[[int, dict[str, Any]], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        live.status_listeners.append(self._show_status)

    async def start(self) -> None:
        await self.plane.start()
        # Compositions a stopped (or killed) server left unfinished are made again.
        folder = self.plane.settings.record_dir
        if folder is not None:
            for show_id in await self.replays.unfinished(folder):
                log.info("show %s: composing the replay with its guest again", show_id)
                self._spawn(self.replays.compose_when_ready(show_id, folder / f"show-{show_id}"))

    async def close(self) -> None:
        await self.plane.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stage(self, show_id: int) -> Stage:
        return self.stages.get(show_id) or Stage()

    # -- changes -------------------------------------------------------------------------

    def _changed(self, show_id: int, stage: Stage) -> None:
        self.stages[show_id] = stage
        message = stage.message()
        self._spawn(
            self.db.execute(
                "INSERT INTO guest_stage (show_id, at, guest, layout) VALUES (?, ?, ?, ?)",
                (show_id, time.time(), int(stage.guest), stage.layout),
            )
        )
        for listener in self.listeners:
            listener(show_id, message)

    def _on_event(self, show: str, event: str) -> None:
        log.info("show %s: guest %s", show, event.replace("_", " "))
        show_id = int(show)
        stage = self.stage(show_id)
        if event == "publishing" and not stage.guest:
            self._changed(show_id, dataclasses.replace(stage, guest=True))
        elif event in ("publisher_lost", "publisher_stopped") and stage.guest:
            self._changed(show_id, dataclasses.replace(stage, guest=False))

    def set_layout(self, show_id: int, layout: str) -> None:
        if layout not in LAYOUTS:
            raise ValueError(layout)
        stage = self.stage(show_id)
        if stage.layout != layout:
            self._changed(show_id, dataclasses.replace(stage, layout=layout))

    def set_muted(self, show_id: int, muted: bool) -> None:
        self.stages[show_id] = dataclasses.replace(self.stage(show_id), muted=muted)
        if muted:
            self.plane.muted.add(str(show_id))
        else:
            self.plane.muted.discard(str(show_id))

    async def remove(self, show_id: int) -> None:
        """The guest leaves the stage: every link of the show dies, their session closes."""
        await guests.revoke_all(self.db, show_id)
        session = self.plane.publisher_session(str(show_id))
        if session is not None:
            await self.plane.stop_publishing(str(show_id), session)
        stage = self.stage(show_id)
        if stage.guest:
            self._changed(show_id, dataclasses.replace(stage, guest=False))

    # -- the show's end --------------------------------------------------------------------

    def _show_status(self, show_id: int, status: str, _since: float | None) -> None:
        if status == "ended":
            self._spawn(self._ended(show_id))

    async def _ended(self, show_id: int) -> None:
        stage = self.stages.pop(show_id, None)
        self.plane.muted.discard(str(show_id))
        await guests.revoke_all(self.db, show_id)
        if stage is not None and stage.guest:
            await self.db.execute(
                "INSERT INTO guest_stage (show_id, at, guest, layout) VALUES (?, ?, 0, ?)",
                (show_id, time.time(), stage.layout),
            )
        await self.plane.end_show(str(show_id))
        folder = self.plane.settings.record_dir
        if folder is not None:
            await self.replays.compose_when_ready(show_id, folder / f"show-{show_id}")
