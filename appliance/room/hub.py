"""The live room of a show: who is connected, what they see, and the broadcast tick.

Messages for everyone are not sent one by one: they go to the room's outbox, and every
tick (100 ms) the outbox becomes one JSON frame, serialised once and queued to every
client. Hearts are summed and sent as one count every 250 ms; the viewer count at most
once a second. So the cost of a busy room grows with ticks times clients, not with
messages times clients.

A frame is written to each client's socket as it is made, its bytes built once for
everyone (appliance/room/wire.py). A client whose socket has a bounded backlog waiting is
slow or gone, and is disconnected (it may reconnect) rather than waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from babel.support import NullTranslations

from appliance.accounts.security import TokenBucket
from appliance.engagement.service import Engagement
from appliance.room.collector import FullCollections
from appliance.room.confusables import skeleton
from appliance.room.feed import RoomFeed
from appliance.room.health import RoomHealth
from appliance.room.sanctions import Sanctions
from appliance.room.wire import Frame, Outlet, QueuedOutlet

log = logging.getLogger(__name__)

TICK = 0.1
HEART_EVERY = 0.25
VIEWERS_EVERY = 1.0
IDLE_SECONDS = 60.0  # a client silent this long (no message, no ping) is gone
# A viewer on the feed pings every 50 s: a request of its own each time, uncached, where
# a socket's ping is a frame on a connection already open.
POLLED_IDLE_SECONDS = 120.0
RECENT = 50
REMEMBERED = 2000  # messages whose authors staff can still mute or ban
CLOSE_SLOW = 1013
CLOSE_POLICY = 1008


@dataclass(eq=False)
class Client:
    viewer: str
    address: str
    tr: NullTranslations
    staff_user: int | None = None
    role: str | None = None
    name: str | None = None
    # Where frames go: straight to the socket, or (under another server) a queue.
    outlet: Outlet = field(default_factory=QueuedOutlet)
    close_code: int | None = None
    chat_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(0.5, 3))
    heart_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(10, 20))
    frame_bucket: TokenBucket = field(default_factory=lambda: TokenBucket(20, 60))
    bad_frames: int = 0
    last_notice: float = 0.0
    last_message: float = 0.0
    said_hello: bool = False
    # On no socket: it reads the feed and sends with POSTs (appliance/room/polled.py);
    # broadcast frames are not passed to it, only what is meant for this client alone.
    polled: bool = False
    heard: float = field(default_factory=time.monotonic)  # when it last sent anything

    @property
    def staff(self) -> bool:
        return self.staff_user is not None

    def send(self, frame: Frame) -> None:
        """Pass a frame on; a client that cannot keep up is dropped."""
        if self.close_code is not None:
            return
        if not self.outlet.put(frame):
            self.close(CLOSE_SLOW, discard=True)

    def send_messages(self, *messages: dict[str, Any]) -> None:
        self.send(Frame(json.dumps(messages)))

    def close(self, code: int, discard: bool = False) -> None:
        """Close after the frames already sent (a notice saying why, say), or at once,
        dropping what can still be dropped, for a client too slow to take them."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.outlet.finish(discard)


@dataclass
class Record:
    """What staff act on for a message: its author and where they connected from."""

    message: dict[str, Any]
    viewer: str
    address: str


class Room:
    def __init__(self, show_id: int, status: str, live_started_at: float | None) -> None:
        self.show_id = show_id
        self.status = status
        self.live_started_at = live_started_at
        self.clients: set[Client] = set()
        self.sockets_by_address: dict[str, int] = {}  # open sockets per client address
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.records: dict[int, Record] = {}
        self.pinned_message: dict[str, Any] | None = None
        self.product: dict[str, Any] | None = None
        self.offer: dict[str, Any] | None = None
        # Who claimed the current limited offer: viewer ids and addresses.
        self.offer_claims: set[str] = set()
        self.offer_addresses: set[str] = set()
        self.chat_open = True
        self.slow_mode = 0
        self.sanctions = Sanctions()  # mutes and bans (appliance/room/sanctions.py)
        self.engagement = Engagement(show_id)  # polls and giveaways (appliance/engagement)
        self.last_said: dict[str, float] = {}
        self.outbox: list[dict[str, Any]] = []
        self.hearts = 0
        self.chat_total = 0  # since the room opened, for /metrics
        self.hearts_total = 0
        self._hearts_at = 0.0
        self._viewers_sent = -1
        self._viewers_at = 0.0
        self.feed = RoomFeed()  # the same frames, numbered, for readers over HTTP
        self.polled: dict[str, Client] = {}  # viewers on the feed, by viewer id
        self.polled_by_address: dict[str, int] = {}

    # -- membership ----------------------------------------------------------------

    @property
    def viewer_count(self) -> int:
        """Viewers, not sockets: a viewer with two tabs open is one. A client without the
        viewer cookie is a new viewer on each socket, which the per-address cap bounds."""
        return len({c.viewer for c in self.clients if not c.staff})

    def reserve(self, address: str, cap: int) -> bool:
        """Take one of `address`'s `cap` sockets in this room (0: no cap), or say no.
        Taken before the socket is accepted, so a burst is counted as it arrives."""
        held = self.sockets_by_address.get(address, 0)
        if cap > 0 and held >= cap:
            return False
        self.sockets_by_address[address] = held + 1
        return True

    def release(self, address: str) -> None:
        held = self.sockets_by_address.get(address, 0) - 1
        if held > 0:
            self.sockets_by_address[address] = held
        else:
            self.sockets_by_address.pop(address, None)

    def is_banned(self, client: Client) -> bool:
        return self.sanctions.find("ban", client.viewer, client.address) is not None

    def is_muted(self, client: Client) -> bool:
        return self.sanctions.find("mute", client.viewer, client.address) is not None

    def names_in_use(self, exclude: Client) -> set[str]:
        """Names of the others: not this viewer's own, on another tab or on the feed."""
        viewer = exclude.viewer
        return {fold(c.name) for c in self.clients if c.name and c.viewer != viewer}

    def show_offset(self, now: float | None = None) -> float | None:
        if self.status != "live" or self.live_started_at is None:
            return None
        return round((time.time() if now is None else now) - self.live_started_at, 1)

    # -- what a joining client gets --------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "type": "state",
            "seq": self.feed.seq,  # the newest broadcast frame this state includes
            "show": {"id": self.show_id, "status": self.status},
            "messages": list(self.recent),
            "questions": [m for m in self.recent if m["question"] and not m["answered"]],
            "pinned_message": self.pinned_message,
            "product": self.product,
            "offer": self.public_offer(),
            "viewers": self.viewer_count,
            "chat": {"open": self.chat_open, "slow_mode": self.slow_mode},
            **self.engagement.state(),
        }

    def public_offer(self) -> dict[str, Any] | None:
        offer = self.offer
        if offer is None:
            return None
        limited = offer["quantity"] is not None
        return {
            "code": None if limited else offer["code"],
            "ends_at": offer["ends_at"],
            "quantity": offer["quantity"],
            "remaining": offer["remaining"],
        }

    # -- broadcasting ----------------------------------------------------------------

    def broadcast(self, message: dict[str, Any]) -> None:
        self.outbox.append(message)

    def remember(self, message: dict[str, Any], viewer: str, address: str) -> None:
        self.recent.append(message)
        self.records[message["id"]] = Record(message, viewer, address)
        if len(self.records) > REMEMBERED:
            for old in list(self.records)[: len(self.records) - REMEMBERED]:
                del self.records[old]

    def forget_message(self, message_id: int) -> None:
        kept = [m for m in self.recent if m["id"] != message_id]
        self.recent.clear()
        self.recent.extend(kept)

    def close_idle(self, now: float) -> None:
        for client in self.clients:
            if now - client.heard > (POLLED_IDLE_SECONDS if client.polled else IDLE_SECONDS):
                client.close(1001)  # silent for a minute (two, on the feed): gone
        for viewer, client in list(self.polled.items()):
            if client.close_code is not None:  # idle, banned: no socket's end to wait for
                self.drop_polled(viewer, client)

    def drop_polled(self, viewer: str, client: Client) -> None:
        if self.polled.get(viewer) is client:
            del self.polled[viewer]
            self.clients.discard(client)
            held = self.polled_by_address.get(client.address, 0) - 1
            if held > 0:
                self.polled_by_address[client.address] = held
            else:
                self.polled_by_address.pop(client.address, None)

    def tick(self, now: float) -> None:
        """Turn what happened since the last tick into one frame for everyone."""
        offer = self.offer
        if offer is not None and time.time() >= offer["ends_at"]:
            self.offer = None
            self.offer_claims = set()
            self.offer_addresses = set()
            self.outbox.append({"type": "offer", "offer": None})
        if self.hearts and now - self._hearts_at >= HEART_EVERY:
            self.outbox.append({"type": "hearts", "count": self.hearts})
            self.hearts = 0
            self._hearts_at = now
        if now - self._viewers_at >= VIEWERS_EVERY:
            self.close_idle(now)
            count = self.viewer_count
            if count != self._viewers_sent:
                self.outbox.append({"type": "viewers", "count": count})
                self._viewers_sent = count
            self._viewers_at = now
        self.engagement.tick(now, self)
        if not self.outbox:
            return
        # Each broadcast frame starts with its number, the same on the sockets and in the
        # feed: a client moving between them skips what it has already seen.
        seq = self.feed.seq + 1
        frame = Frame(json.dumps([{"type": "seq", "seq": seq}, *self.outbox]))
        self.outbox = []
        self.feed.push(frame.text)
        for client in list(self.clients):
            if client.said_hello and not client.polled:
                client.send(frame)


def fold(name: str) -> str:
    """A name as compared for uniqueness and impersonation: by how it looks (a confusable
    skeleton: case, accents, digits for letters, Cyrillic and Greek look-alikes, spaces
    and dots ignored; appliance/room/confusables.py)."""
    return skeleton(name)


class RoomHub:
    """All rooms of the process, and the one task that ticks them."""

    def __init__(self, loader: Callable[[int], Any]) -> None:
        self.rooms: dict[int, Room] = {}
        self._loader = loader
        self._locks: dict[int, asyncio.Lock] = {}
        self._task: asyncio.Task[None] | None = None
        self.health = RoomHealth()
        self.collector: FullCollections | None = None  # the serving process sets it

    async def start(self) -> None:
        self.health.start()
        self._task = asyncio.create_task(self._tick_forever())

    async def close(self) -> None:
        self.health.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for room in self.rooms.values():
            room.tick(time.monotonic())
            for client in list(room.clients):
                client.close(1001)

    async def room(self, show_id: int) -> Room:
        room = self.rooms.get(show_id)
        if room is not None:
            return room
        lock = self._locks.setdefault(show_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(show_id)
            if room is None:
                room = self.rooms[show_id] = await self._loader(show_id)
        return room

    def leave(self, room: Room, client: Client) -> None:
        room.clients.discard(client)

    async def _tick_forever(self) -> None:
        while True:
            due = time.monotonic() + TICK
            await asyncio.sleep(TICK)
            now = time.monotonic()
            clients = 0
            for room in list(self.rooms.values()):
                clients += len(room.clients)
                try:
                    room.tick(now)
                except Exception:
                    log.exception("room %s: tick failed", room.show_id)
            self.health.tick(now - due, time.monotonic() - now, clients)
            if self.collector is not None:
                self.collector.tick(now, clients)
