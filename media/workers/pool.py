"""The supervisor of the relay workers, in the main process.

It starts `media.workers.worker` processes, feeds each of them every packet of every
live show once (media.workers.feed), places each new viewer on the least loaded worker,
keeps the admission counts (sessions, connected viewers, per client key) so that
`media.max_viewers` holds across workers without asking them, passes keyframe requests
from the workers to the main process's rate-limited keyframe logic, and restarts a
worker that dies (its viewers' players reconnect by themselves).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiortc.rtp import RtpPacket

from media.offers import BadOffer
from media.plane import NotLive, TooManyFromOne, TooManyViewers
from media.relay import Stream
from media.workers.feed import encode_packet, encode_sender_report, feed_pair
from media.workers.protocol import frame, read_message

log = logging.getLogger(__name__)

REQUEST_SECONDS = 20.0  # a worker that does not answer a request in this long is stuck
RESTART_DELAY = 0.5  # seconds before a dead worker is started again (doubling, up to 8 s)
TOTALS = ("packets_out", "bytes_out", "dropped", "retransmitted")

# Where `media` is, for the worker's `python -m media.workers.worker`.
ROOT = str(Path(__file__).resolve().parent.parent.parent)

KeyframeSink = Callable[[str, str], None]


@dataclass
class Session:
    worker: int
    key: str
    reserved: bool
    connected: bool = False


@dataclass
class Worker:
    index: int
    process: asyncio.subprocess.Process
    feed: socket.socket
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    # What the worker last told of each show (pushed every second).
    shows: dict[str, Any] = field(default_factory=dict)
    fed: int = 0
    feed_dropped: int = 0
    alive: bool = True
    reader: asyncio.Task[None] | None = None


class WorkerPool:
    def __init__(
        self,
        count: int,
        settings: dict[str, Any],
        *,
        max_viewers: int,
        max_viewers_per_key: int,
        on_keyframe: KeyframeSink,
    ) -> None:
        self.count = count
        self.settings = settings
        self.max_viewers = max_viewers
        self.max_viewers_per_key = max_viewers_per_key
        self.on_keyframe = on_keyframe
        self.workers: list[Worker | None] = [None] * count
        self.restarts = [0] * count
        self.sessions: dict[str, dict[str, Session]] = {}
        # Counters of workers that died, per show and kind, so totals never go down.
        self.retired: dict[str, dict[str, dict[str, int]]] = {}
        self._ids = itertools.count(1)
        self._epochs: dict[tuple[str, str, str], tuple[Stream, int]] = {}
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = False
        self._starting = asyncio.Lock()

    # -- processes -------------------------------------------------------------

    async def start(self) -> None:
        await self.ensure_started()

    async def ensure_started(self) -> None:
        """Start the workers, once, whoever asks first."""
        async with self._starting:
            if self.started or self._closing:
                return
            for index in range(self.count):
                await self._spawn(index)
            self.started = True

    async def close(self) -> None:
        self._closing = True
        for worker in self.workers:
            if worker is not None and worker.alive:
                worker.writer.close()  # the worker ends when its control channel does
        for worker in self.workers:
            if worker is not None:
                try:
                    await asyncio.wait_for(worker.process.wait(), 10)
                except TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()
                if worker.reader is not None:
                    worker.reader.cancel()
                worker.feed.close()
        for task in list(self._tasks):
            task.cancel()

    async def _spawn(self, index: int) -> None:
        control, control_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        feed, feed_child = feed_pair()
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (ROOT, os.environ.get("PYTHONPATH")))),
        }
        command = [
            sys.executable,
            "-m",
            "media.workers.worker",
            "--index",
            str(index),
            "--control-fd",
            str(control_child.fileno()),
            "--feed-fd",
            str(feed_child.fileno()),
        ]
        process = await asyncio.create_subprocess_exec(
            *command, pass_fds=(control_child.fileno(), feed_child.fileno()), env=env
        )
        control_child.close()
        feed_child.close()
        reader, writer = await asyncio.open_unix_connection(sock=control)
        # The settings (TURN credentials among them) go on the channel, not the command
        # line that every user of the machine can read.
        writer.write(frame({"settings": self.settings}))
        worker = Worker(index, process, feed, writer)
        self.workers[index] = worker
        worker.reader = asyncio.ensure_future(self._read(worker, reader))
        log.info("relay worker %d started (pid %d)", index, process.pid)

    async def _read(self, worker: Worker, reader: asyncio.StreamReader) -> None:
        while (message := await read_message(reader)) is not None:
            try:
                self._on_message(worker, message)
            except Exception:
                log.exception("relay worker %d: a message could not be handled", worker.index)
        await self._lost(worker)

    def _on_message(self, worker: Worker, message: dict[str, Any]) -> None:
        if "id" in message:
            future = worker.pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result(message)
            return
        event, show = message.get("ev"), str(message.get("show", ""))
        if event == "keyframe":
            self.on_keyframe(show, str(message["kind"]))
        elif event == "connected":
            self._connected(worker, show, str(message["session"]))
        elif event == "left":
            session = self.sessions.get(show, {}).get(str(message["session"]))
            if session is not None and session.worker == worker.index:
                del self.sessions[show][str(message["session"])]
        elif event == "stats":
            worker.shows = message["shows"]

    def _connected(self, worker: Worker, show: str, session_id: str) -> None:
        session = self.sessions.get(show, {}).get(session_id)
        if session is None or session.connected:
            return
        if not session.reserved and self.viewer_count(show) >= self.max_viewers:
            # Others connected first: the show is full after all.
            log.info("show %s: viewer %s connected to a full show", show, session_id[:6])
            self._spawn_task(self.leave(show, session_id))
        else:
            session.connected = True

    async def _lost(self, worker: Worker) -> None:
        worker.alive = False
        for future in worker.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("the relay worker has gone"))
        worker.pending.clear()
        for sessions in self.sessions.values():
            for session_id in [s for s, v in sessions.items() if v.worker == worker.index]:
                del sessions[session_id]
        for show, figures in worker.shows.items():
            retired = self.retired.setdefault(show, {})
            for kind, stream in figures.get("streams", {}).items():
                counts = retired.setdefault(kind, dict.fromkeys(TOTALS, 0))
                for name in TOTALS:
                    counts[name] += int(stream["totals"].get(name, 0))
        worker.shows = {}
        worker.feed.close()
        worker.writer.close()
        code = await worker.process.wait()
        if self._closing:
            return
        index = worker.index
        self.restarts[index] += 1
        log.warning(
            "relay worker %d (pid %d) ended with %s; its viewers reconnect; restarting it",
            index,
            worker.process.pid,
            code,
        )
        await asyncio.sleep(min(8.0, RESTART_DELAY * 2 ** min(self.restarts[index] - 1, 4)))
        if not self._closing:
            try:
                await self._spawn(index)
            except OSError:
                log.exception("relay worker %d could not be started again", index)

    def _spawn_task(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _request(self, worker: Worker, message: dict[str, Any]) -> dict[str, Any]:
        if not worker.alive:
            raise ConnectionError("the relay worker has gone")
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        worker.pending[number] = future
        worker.writer.write(frame({**message, "id": number}))
        try:
            return await asyncio.wait_for(future, REQUEST_SECONDS)
        finally:
            worker.pending.pop(number, None)

    def _tell(self, worker: Worker, message: dict[str, Any]) -> None:
        if worker.alive:
            worker.writer.write(frame(message))

    def _alive(self) -> list[Worker]:
        return [w for w in self.workers if w is not None and w.alive]

    # -- the packet feed (the hot path: one send per packet per worker) ------------

    def feed_packet(
        self, show: str, kind: str, stream: Stream, packet: RtpPacket, rid: str = "", rids: str = ""
    ) -> None:
        """One packet of the show, to every worker; of a simulcast publisher, `rid` names
        its layer and `rids` the publisher's layers, largest first, comma-joined."""
        generation = self._generation(show, kind, rid, stream)
        self._send(
            encode_packet(
                show, kind, generation, stream.codec, stream.clock_rate, packet, rid, rids
            )
        )

    def feed_sender_report(
        self,
        show: str,
        kind: str,
        stream: Stream,
        ntp: int,
        rtp_ts: int,
        rid: str = "",
        rids: str = "",
    ) -> None:
        generation = self._generation(show, kind, rid, stream)
        self._send(encode_sender_report(show, kind, generation, ntp, rtp_ts, rid, rids))

    def _generation(self, show: str, kind: str, rid: str, stream: Stream) -> int:
        """The stream's generation, made unique across the main process's streams of the
        show (a show left without publisher nor viewer gets new streams when it resumes;
        a simulcast layer is a stream of its own)."""
        entry = self._epochs.get((show, kind, rid))
        if entry is None or entry[0] is not stream:
            entry = self._epochs[(show, kind, rid)] = (stream, next(self._ids))
        return ((entry[1] << 16) | (stream.generation & 0xFFFF)) & 0xFFFFFFFF

    def _send(self, data: bytes) -> None:
        for worker in self.workers:
            if worker is None or not worker.alive:
                continue
            try:
                worker.feed.send(data)
                worker.fed += 1
            except BlockingIOError:  # the worker is behind: it loses this packet
                worker.feed_dropped += 1
            except OSError:
                pass  # the worker has gone; its reader notices

    # -- viewers -----------------------------------------------------------------

    def viewer_count(self, show: str) -> int:
        return sum(1 for s in self.sessions.get(show, {}).values() if s.connected)

    def connecting_count(self, show: str) -> int:
        return sum(1 for s in self.sessions.get(show, {}).values() if not s.connected)

    def has_viewers(self, show: str) -> bool:
        return bool(self.sessions.get(show))

    def has_viewer(self, show: str, session: str) -> bool:
        return session in self.sessions.get(show, {})

    def check_room(self, show: str, key: str) -> None:
        """As MediaPlane._check_room, over the sessions of every worker."""
        sessions = self.sessions.get(show, {})
        if self.viewer_count(show) >= self.max_viewers or len(sessions) >= 2 * self.max_viewers:
            raise TooManyViewers(show)
        cap = self.max_viewers_per_key
        if cap > 0 and sum(1 for s in sessions.values() if s.key == key) >= cap:
            raise TooManyFromOne(show)

    def _least_loaded(self) -> Worker | None:
        load = [0] * self.count
        for sessions in self.sessions.values():
            for session in sessions.values():
                load[session.worker] += 1
        alive = self._alive()
        return min(alive, key=lambda w: (load[w.index], w.index)) if alive else None

    async def watch(
        self,
        show: str,
        offer: bytes,
        kinds: list[str],
        codecs: dict[str, str],
        key: str,
        reserved: bool,
    ) -> tuple[str, str]:
        if not reserved:
            self.check_room(show, key)
        worker = self._least_loaded()
        if worker is None:
            raise NotLive(show)  # every worker is restarting: the player tries again
        sessions = self.sessions.setdefault(show, {})
        # The place is taken now, before the worker answers: requests arriving together
        # are counted against each other.
        placeholder = f"?{next(self._ids)}"
        sessions[placeholder] = Session(worker.index, key, reserved)
        try:
            reply = await self._request(
                worker,
                {
                    "op": "watch",
                    "show": show,
                    "offer": offer.decode(),
                    "kinds": kinds,
                    "codecs": codecs,
                },
            )
        except (ConnectionError, TimeoutError):
            raise NotLive(show) from None
        finally:
            sessions.pop(placeholder, None)
        if reply.get("error") == "bad_offer":
            raise BadOffer(str(reply.get("message", "")))
        if not reply.get("ok"):
            raise NotLive(show)
        session_id = str(reply["session"])
        if worker.alive:
            sessions[session_id] = Session(worker.index, key, reserved)
        return session_id, str(reply["answer"])

    async def leave(self, show: str, session_id: str) -> bool:
        session = self.sessions.get(show, {}).pop(session_id, None)
        if session is None:
            return False
        worker = self.workers[session.worker]
        if worker is not None and worker.alive:
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self._request(worker, {"op": "leave", "show": show, "session": session_id})
        return True

    def set_video(self, show: str, session_id: str, enabled: bool) -> bool:
        session = self.sessions.get(show, {}).get(session_id)
        worker = self.workers[session.worker] if session is not None else None
        if worker is None:
            return False
        self._tell(
            worker, {"op": "set_video", "show": show, "session": session_id, "enabled": enabled}
        )
        return True

    async def end_show(self, show: str) -> None:
        self.sessions.pop(show, None)
        for worker in self._alive():
            with contextlib.suppress(ConnectionError, TimeoutError):
                await self._request(worker, {"op": "end_show", "show": show})
        self.retired.pop(show, None)
        for key in [k for k in self._epochs if k[0] == show]:
            del self._epochs[key]

    # -- figures -----------------------------------------------------------------

    def _pushed(self, show: str, kind: str) -> list[dict[str, Any]]:
        found = []
        for worker in self._alive():
            stream = worker.shows.get(show, {}).get("streams", {}).get(kind)
            if stream is not None:
                found.append(stream)
        return found

    def merge_stats(self, show: str, stats: dict[str, Any]) -> None:
        """Put the workers' figures into the main process's stats of the show."""
        sessions = self.sessions.get(show, {})
        stats["viewers"] = self.viewer_count(show)
        stats["connecting"] = self.connecting_count(show)
        for kind, figures in stats.get("streams", {}).items():
            pushed = [p["stats"] for p in self._pushed(show, kind)]
            retired = self.retired.get(show, {}).get(kind, {})
            figures["packets_out"] = sum(p["packets_out"] for p in pushed) + retired.get(
                "packets_out", 0
            )
            for name in ("viewers", "waiting_for_keyframe", "dropped"):
                figures[name] = sum(p[name] for p in pushed)
            for name in ("fanout_ms_p50", "fanout_ms_p99"):
                figures[name] = max((p[name] for p in pushed), default=0.0)
        for rid, layer in stats.get("layers", {}).items():
            held = [w.shows.get(show, {}).get("layers", {}).get(rid) for w in self._alive()]
            held = [h for h in held if h is not None]
            # Viewers are the workers'; the bitrate and packets are the main process's.
            layer["viewers"] = sum(h["viewers"] for h in held)
            layer["switching_here"] = sum(h["switching_here"] for h in held)
            layer["estimates"] = [e for h in held for e in h["estimates"]][:20]
        stats["workers"] = [
            {
                "worker": index,
                "pid": worker.process.pid if worker is not None else None,
                "alive": worker is not None and worker.alive,
                "restarts": self.restarts[index],
                "viewers": sum(1 for s in sessions.values() if s.worker == index and s.connected),
                "sessions": sum(1 for s in sessions.values() if s.worker == index),
                "fed": worker.fed if worker is not None else 0,
                "feed_dropped": worker.feed_dropped if worker is not None else 0,
            }
            for index, worker in enumerate(self.workers)
        ]

    def totals(self, show: str, kind: str, main: dict[str, int]) -> dict[str, int]:
        """The stream's counters since it began: received in the main process,
        forwarded by the workers (those that died included)."""
        result = dict(main)
        retired = self.retired.get(show, {}).get(kind, {})
        for name in TOTALS:
            result[name] = retired.get(name, 0) + sum(
                int(p["totals"].get(name, 0)) for p in self._pushed(show, kind)
            )
        return result
