"""A relay worker process: `python -m media.workers.worker` (started by the pool, which
passes it the two sockets; the first message on the control channel is its settings).

It owns the viewers' peer connections placed on it. Its `WorkerPlane` is the media
plane with no publisher of its own: each show's streams are fed by the main process
(media.workers.feed), every simulcast layer included, and the viewers are the plane's
own (watch, leave, the audio-only switch, the layer each viewer's link allows, sender
reports, the silence and connect timeouts, NACKs answered from its own packet cache).
A keyframe request goes to the main process, which coalesces those of every worker
before asking the publisher. The worker ends when its control channel
closes (the main process has stopped or died).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Collection
from typing import Any

from aiortc import RTCIceServer

from media.offers import BadOffer
from media.plane import MediaPlane, MediaSettings, NotLive, ShowRelay
from media.workers.feed import MAX_DATAGRAM, FedPacket, FedReport, decode
from media.workers.protocol import frame, read_message

log = logging.getLogger(__name__)

STATS_EVERY = 1.0  # seconds between two pushes of the worker's figures to the main process
STALE_AFTER = 30.0  # seconds without packets nor viewers before a show's streams go
# Datagrams read in one go before the loop serves anything else. Each is sent to every
# viewer of the worker (about 15 µs a viewer), so a worker that has fallen behind spends
# a whole batch forwarding: at 256 datagrams and 200 viewers that was 0.8 s of CPU, more
# on a busy machine, during which no STUN answer, DTLS handshake or RTCP was served.
# ICE consent checks give up on an answer after 0.5 s and close the connection after six
# such misses, so behind by half a minute the worker lost viewers by the hundred (both
# ends' checks failed). 16 keeps a turn of the loop under about 50 ms at 200 viewers.
FEED_BATCH = 16

Tell = Callable[[dict[str, Any]], None]


class WorkerRelay(ShowRelay):
    """A show's streams in a worker: fed packets, its keyframe requests told upwards."""

    def __init__(self, show: str, plane: WorkerPlane) -> None:
        super().__init__(show, plane)
        self.tell = plane.tell
        self.fed_generation: dict[str, int] = {}
        self.fed_rids = ""  # the publisher's simulcast layers as last fed ("": none)

    def request_keyframe(self, kind: str) -> None:
        self.tell({"ev": "keyframe", "show": self.show, "kind": kind})


class WorkerPlane(MediaPlane):
    def __init__(self, settings: MediaSettings, tell: Tell) -> None:
        super().__init__(settings)
        self.tell = tell
        self.published: dict[str, Collection[str]] = {}

    def _relay(self, show: str) -> ShowRelay:
        relay = self.relays.get(show)
        if relay is None:
            relay = self.relays[show] = WorkerRelay(show, self)
        return relay

    def _published(self, relay: ShowRelay | None) -> Collection[str] | None:
        return self.published.get(relay.show) if relay is not None else None

    def fed(self, item: FedPacket | FedReport) -> None:
        relay = self._relay(item.show)
        assert isinstance(relay, WorkerRelay)
        key, stream = item.kind, relay.streams[item.kind]
        if item.rid:  # a layer of a simulcast publisher's video
            if isinstance(item, FedPacket) and item.rids != relay.fed_rids:
                relay.fed_rids = item.rids
                relay.layers.set_rids(item.rids.split(","))
            layer = relay.layers.by_rid.get(item.rid)
            if layer is None:
                return
            key, stream = f"video:{item.rid}", layer
        elif item.kind == "video" and relay.fed_rids and isinstance(item, FedPacket):
            relay.fed_rids = ""  # a new publisher without simulcast
            relay.layers.set_rids([])
        if isinstance(item, FedReport):
            if relay.fed_generation.get(key) == item.generation:
                stream.on_sender_report(item.ntp, item.rtp_ts, time.monotonic())
            return
        if relay.fed_generation.get(key) != item.generation:
            relay.fed_generation[key] = item.generation
            stream.new_source(item.codec, item.clock_rate)
        now = time.monotonic()
        stream.on_packet(item.packet, now)
        if item.rid:
            # Keeps `recorded` on the largest layer sending, as in the main process: the
            # layer the relay's tick asks keyframes of when it falls silent.
            relay.layers.feeds(stream, item.packet, now)

    async def leave(self, show: str, session: str) -> bool:
        left = await super().leave(show, session)
        if left:
            self.tell({"ev": "left", "show": show, "session": session})
        return left

    async def watch_for(
        self, show: str, offer: str, kinds: list[str], codecs: dict[str, str]
    ) -> tuple[str, str]:
        """A viewer the main process placed here (and admitted: its place is counted
        there, so the worker takes it as reserved)."""
        self.published[show] = kinds
        relay = self._relay(show)
        for kind, codec in codecs.items():
            if kind in relay.streams and not relay.streams[kind].codec:
                relay.streams[kind].codec = codec  # before its first packet reaches us
        session, answer = await self.watch(show, offer.encode(), reserved=True)
        viewer = self.relays[show].viewers[session]

        @viewer.pc.on("connectionstatechange")
        def _state() -> None:
            if viewer.pc.connectionState == "connected":
                self.tell({"ev": "connected", "show": show, "session": session})

        return session, answer

    def forget_stale(self, now: float) -> None:
        """Drop the streams of shows nobody watches here and no packet fed for a while
        (an ended show): their caches would otherwise stay for the process's life."""
        for show, relay in list(self.relays.items()):
            if relay.viewers:
                continue
            fed = [s.last_packet[1] for s in relay.streams.values() if s.last_packet]
            if not fed or now - max(fed) > STALE_AFTER:
                del self.relays[show]

    def figures(self) -> dict[str, Any]:
        shows: dict[str, Any] = {}
        for show, relay in list(self.relays.items()):
            shows[show] = {
                "viewers": sum(1 for v in relay.viewers.values() if v.connected),
                "layers": relay.layers.stats(),
                "streams": {
                    kind: {"stats": stream.stats(), "totals": stream.totals()}
                    for kind, stream in relay.streams.items()
                },
            }
        return shows


class Worker:
    def __init__(self, index: int, control: socket.socket, feed: socket.socket) -> None:
        self.index = index
        self.control = control
        self.feed = feed
        self.writer: asyncio.StreamWriter | None = None
        self.plane: WorkerPlane | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def tell(self, message: dict[str, Any]) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(frame(message))

    async def run(self) -> None:
        reader, self.writer = await asyncio.open_unix_connection(sock=self.control)
        first = await read_message(reader)  # the pool's settings come first
        if first is None:
            return
        settings = media_settings(dict(first.get("settings", {})))
        plane = self.plane = WorkerPlane(settings, self.tell)
        await plane.start()
        self.feed.setblocking(False)
        loop = asyncio.get_running_loop()
        loop.add_reader(self.feed.fileno(), self._read_feed)
        pusher = asyncio.ensure_future(self._push_figures())
        try:
            while (message := await read_message(reader)) is not None:
                task = asyncio.ensure_future(self._handle(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            loop.remove_reader(self.feed.fileno())
            pusher.cancel()
            await plane.close()

    def _read_feed(self) -> None:
        plane = self.plane
        assert plane is not None
        feed = self.feed
        for _ in range(FEED_BATCH):
            try:
                data = feed.recv(MAX_DATAGRAM)
            except BlockingIOError:
                return
            item = decode(data)
            if item is None:
                continue
            try:
                plane.fed(item)
            except Exception:
                log.exception("worker %d: forwarding a packet failed", self.index)

    async def _push_figures(self) -> None:
        while True:
            await asyncio.sleep(STATS_EVERY)
            assert self.plane is not None
            self.plane.forget_stale(time.monotonic())
            self.tell({"ev": "stats", "shows": self.plane.figures()})

    async def _handle(self, message: dict[str, Any]) -> None:
        plane = self.plane
        assert plane is not None
        op, show = message.get("op"), str(message.get("show", ""))
        reply: dict[str, Any] = {"ok": True}
        try:
            if op == "watch":
                session, answer = await plane.watch_for(
                    show, str(message["offer"]), list(message["kinds"]), dict(message["codecs"])
                )
                reply.update(session=session, answer=answer)
            elif op == "leave":
                reply["left"] = await plane.leave(show, str(message["session"]))
            elif op == "set_video":
                plane.set_video(show, str(message["session"]), bool(message["enabled"]))
            elif op == "end_show":
                await plane.end_show(show)
                plane.published.pop(show, None)
            else:
                reply = {"error": "unknown", "message": f"unknown operation {op!r}"}
        except BadOffer as exc:
            reply = {"error": "bad_offer", "message": str(exc)}
        except NotLive:
            reply = {"error": "not_live", "message": show}
        except Exception as exc:
            log.exception("worker %d: %s failed", self.index, op)
            reply = {"error": "failed", "message": repr(exc)}
        if "id" in message:
            self.tell({**reply, "id": message["id"]})


def media_settings(raw: dict[str, Any]) -> MediaSettings:
    return MediaSettings(
        ice_servers=[RTCIceServer(**server) for server in raw.get("ice_servers", [])],
        host_addresses=list(raw.get("host_addresses", [])),
        public_ip=str(raw.get("public_ip", "")),
        ice_connect_seconds=float(raw.get("ice_connect_seconds", 10.0)),
        # Admission is the main process's: a worker takes every viewer it is given.
        max_viewers=1 << 30,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="media.workers.worker")
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--feed-fd", type=int, required=True)
    args = parser.parse_args(argv)
    level = os.environ.get("VITRINE_LOG_LEVEL", "INFO").upper()  # as the server's
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format=f"%(asctime)s %(levelname)s relay worker {args.index}: %(name)s: %(message)s",
    )
    control = socket.socket(fileno=args.control_fd)
    feed = socket.socket(fileno=args.feed_fd)
    worker = Worker(args.index, control, feed)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(worker.run())


if __name__ == "__main__":
    main()
