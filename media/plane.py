"""The media plane's interface to the app: publish, watch, leave, end, and events out.

One `MediaPlane` per process. Each show that is being published or watched has a
`ShowRelay`; publishers (WHIP) and viewers (WHEP) are peer connections whose RTP
receivers and senders are swapped for forwarding ones (media.aiortc_glue), joined by
the relay's streams (media.relay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtpPacket

from media import aiortc_glue as glue
from media import simulcast
from media.candidates import announce_public_ip
from media.hls import HlsWriter, Rendition
from media.offers import BadOffer, check_offer
from media.recorder import Recorder
from media.relay import DownTrack, Stream, codec_key

if TYPE_CHECKING:
    from media.workers.pool import WorkerPool

log = logging.getLogger(__name__)

EventSink = Callable[[str, str], None]
TICK = 0.25
VIEWER_SILENCE_LIMIT = 30.0  # seconds without RTCP from a viewer before we drop it
AUDIO_ONLY_BELOW = 0.5  # a viewer's estimate under half the video bitrate: audio only
PROBE_AFTER = 15.0  # seconds in audio-only before trying video again


# What a caller is told when aiortc refuses an offer that passed check_offer; the
# exception itself is logged, never sent.
REFUSED = "the offer could not be negotiated (no common codec or transport parameters)"


class NotLive(RuntimeError):
    """Nobody is publishing this show right now."""


class TooManyViewers(RuntimeError):
    """The show has as many connected viewers as it may (or, counting those still
    connecting, twice as many sessions)."""


class TooManyFromOne(RuntimeError):
    """One client (one key: its address, as the app tells it) has as many sessions of the
    show as it may."""


@dataclass
class MediaSettings:
    ice_servers: list[RTCIceServer] = field(default_factory=list)
    host_addresses: list[str] = field(default_factory=list)
    public_ip: str = ""
    max_viewers: int = 500
    # Sessions of one show with the same client key (0: no cap), and how long a new one
    # may take to connect before it is closed.
    max_viewers_per_key: int = 0
    ice_connect_seconds: float = 10.0
    record_dir: Path | None = None  # None: shows are not recorded
    hls: bool = False  # write each live show's low-latency HLS rendition (media.hls)
    # Relay worker processes owning the viewers (media.workers); 0: viewers in-process.
    workers: int = 0
    # Start them with the plane (False), or at the plane's first publisher or viewer
    # (True: a guest's plane, idle on most shows, holds no processes until a guest joins).
    workers_on_first_use: bool = False


@dataclass
class Publisher:
    id: str
    pc: RTCPeerConnection
    receivers: dict[str, glue.ForwardingReceiver]
    media_ssrc: dict[str, int] = field(default_factory=dict)
    # Per kind, who is sending it, as the recorder tells sources apart; set when the
    # stream starts, not per packet.
    sources: dict[str, str] = field(default_factory=dict)
    connected: bool = False
    rids: list[str] = field(default_factory=list)  # its simulcast layers, largest first
    layer_list: str = ""  # the same, comma-joined, as the relay workers' feed carries it


@dataclass
class Viewer:
    id: str
    pc: RTCPeerConnection
    downtracks: dict[str, DownTrack]
    joined_at: float = field(default_factory=time.monotonic)
    audio_only_since: float | None = None
    key: str = ""  # who asked, opaque to the plane (the app gives the client address)
    # Connected (ICE and DTLS): only then does the viewer take a place of max_viewers.
    connected: bool = False


class ShowRelay:
    def __init__(self, show: str, plane: MediaPlane) -> None:
        self.show = show
        self.plane = plane
        self.streams = {
            kind: Stream(kind, self._keyframe_requester(kind)) for kind in ("audio", "video")
        }
        self.publisher: Publisher | None = None
        self.viewers: dict[str, Viewer] = {}
        self.layers = simulcast.VideoLayers(
            self.streams["video"],
            lambda rid: Stream("video", self._keyframe_requester(f"video:{rid}")),
        )

    def _keyframe_requester(self, key: str) -> Callable[[], None]:
        return lambda: self.request_keyframe(key)

    def request_keyframe(self, key: str) -> None:
        """PLI for one stream: 'audio', 'video' or a lower layer's 'video:<rid>'."""
        publisher = self.publisher
        receiver = publisher.receivers.get(key.split(":")[0]) if publisher else None
        ssrc = publisher.media_ssrc.get(key) if publisher else None
        if receiver is not None and ssrc is not None:
            self.plane.spawn(receiver.send_pli(ssrc))

    def on_rtp(
        self, publisher: Publisher, receiver: glue.ForwardingReceiver, packet: RtpPacket
    ) -> None:
        if publisher is not self.publisher:
            return  # a replaced publisher's last packets
        kind = key = receiver.kind
        stream = self.streams[kind]
        rid = ""
        if kind == "video" and publisher.rids:
            rid = receiver.rids.get(packet.ssrc, "")
            layer = self.layers.by_rid.get(rid)
            if layer is None:
                return  # not a layer of the offer (or not named yet)
            if layer is not stream:
                stream, key = layer, f"video:{rid}"
        if publisher.media_ssrc.get(key) != packet.ssrc:
            codec = receiver.codecs.get(packet.payload_type)
            if codec is None:
                return
            publisher.media_ssrc[key] = packet.ssrc
            publisher.sources[key] = f"{publisher.id}/{packet.ssrc}"
            stream.new_source(codec_key(codec.mimeType), codec.clockRate)
        now = time.monotonic()
        stream.on_packet(packet, now)
        pool = self.plane.pool
        if pool is not None:  # every layer: the workers steer their viewers too
            pool.feed_packet(self.show, kind, stream, packet, rid, rid and publisher.layer_list)
        if rid and not self.layers.feeds(stream, packet, now):
            return  # a layer only forwarded: the recording and HLS take one layer
        recorder = self.plane.recorders.get(self.show)
        if recorder is not None:
            recorder.packet(
                kind,
                stream.codec,
                publisher.sources[key],
                packet.timestamp,
                bool(packet.marker),
                packet.payload,
            )

    def on_sr(self, publisher: Publisher, kind: str, ssrc: int, ntp: int, rtp_ts: int) -> None:
        if publisher is not self.publisher:
            return
        pool, layers = self.plane.pool, publisher.layer_list
        if kind == "video" and publisher.rids and publisher.media_ssrc.get(kind) != ssrc:
            for rid, layer in self.layers.by_rid.items():
                if publisher.media_ssrc.get(f"video:{rid}") == ssrc:
                    layer.on_sender_report(ntp, rtp_ts, time.monotonic())
                    if pool is not None:
                        pool.feed_sender_report(self.show, kind, layer, ntp, rtp_ts, rid, layers)
            return
        if publisher.media_ssrc.get(kind) == ssrc:
            stream = self.streams[kind]
            stream.on_sender_report(ntp, rtp_ts, time.monotonic())
            if pool is not None:
                top = publisher.rids[0] if kind == "video" and publisher.rids else ""
                pool.feed_sender_report(self.show, kind, stream, ntp, rtp_ts, top, layers)

    @property
    def idle(self) -> bool:
        pool = self.plane.pool  # relay workers may hold viewers waiting for a publisher
        return (
            self.publisher is None
            and not self.viewers
            and not (pool and pool.has_viewers(self.show))
        )


class MediaPlane:
    def __init__(self, settings: MediaSettings, on_event: EventSink | None = None) -> None:
        self.settings = settings
        self.on_event = on_event or (lambda show, event: None)
        self.relays: dict[str, ShowRelay] = {}
        self.recorders: dict[str, Recorder] = {}
        self.renditions: dict[str, Rendition] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False
        glue.set_host_addresses(settings.host_addresses)
        self.pool: WorkerPool | None = None
        if settings.workers > 0:
            from media.workers.pool import WorkerPool  # the pool imports this module

            self.pool = WorkerPool(
                settings.workers,
                {
                    "ice_servers": [vars(s) for s in settings.ice_servers],
                    "host_addresses": settings.host_addresses,
                    "public_ip": settings.public_ip,
                    "ice_connect_seconds": settings.ice_connect_seconds,
                },
                max_viewers=settings.max_viewers,
                max_viewers_per_key=settings.max_viewers_per_key,
                on_keyframe=self._worker_wants_keyframe,
            )

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        self._ticker = asyncio.create_task(self._tick_forever())
        if self.pool is not None and not self.settings.workers_on_first_use:
            await self.pool.ensure_started()

    async def close(self) -> None:
        self._closed = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        for show in list(self.relays) + list(self.recorders):
            await self.end_show(show)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()

    def _worker_wants_keyframe(self, show: str, kind: str) -> None:
        """A relay worker's viewer waits for a keyframe: asked through the show's stream,
        so that the requests of every worker are coalesced (KEYFRAME_INTERVAL)."""
        relay = self.relays.get(show)
        if relay is None:
            return
        # 'audio', 'video' (the top layer) or a lower layer's 'video:<rid>'.
        base, _, rid = kind.partition(":")
        stream = relay.layers.by_rid.get(rid) if rid else relay.streams.get(base)
        if stream is not None:
            stream.want_keyframe(time.monotonic())

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _relay(self, show: str) -> ShowRelay:
        relay = self.relays.get(show)
        if relay is None:
            relay = self.relays[show] = ShowRelay(show, self)
        return relay

    def _forget_if_idle(self, show: str) -> None:
        relay = self.relays.get(show)
        if relay is not None and relay.idle:
            del self.relays[show]

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=self.settings.ice_servers or None))

    # -- queries -----------------------------------------------------------------

    def is_publishing(self, show: str) -> bool:
        relay = self.relays.get(show)
        return bool(relay and relay.publisher and relay.publisher.connected)

    def has_publisher(self, show: str) -> bool:
        relay = self.relays.get(show)
        return bool(relay and relay.publisher)

    def viewer_count(self, show: str) -> int:
        """Connected viewers: a session still connecting is not watching yet."""
        if self.pool is not None:
            return self.pool.viewer_count(show)
        relay = self.relays.get(show)
        return _connected(relay) if relay else 0

    def connecting_count(self, show: str) -> int:
        """Video sessions of the show still connecting."""
        if self.pool is not None:
            return self.pool.connecting_count(show)
        relay = self.relays.get(show)
        return len(relay.viewers) - _connected(relay) if relay else 0

    def stream_totals(self, show: str, kind: str) -> dict[str, int]:
        """A stream's counters since it began (Stream.totals), across relay workers."""
        relay = self.relays.get(show)
        totals = relay.streams[kind].totals() if relay is not None else {}
        return self.pool.totals(show, kind, totals) if self.pool is not None else totals

    def publisher_session(self, show: str) -> str | None:
        relay = self.relays.get(show)
        return relay.publisher.id if relay and relay.publisher else None

    def stats(self, show: str) -> dict[str, Any]:
        """Counters and delays of one show's relay, for operators and benchmarks."""
        relay = self.relays.get(show)
        if relay is None:
            return {"publishing": False, "viewers": 0, "streams": {}}
        rendition = self.renditions.get(show)
        stats = {
            "publishing": self.is_publishing(show),
            "viewers": _connected(relay),
            "connecting": len(relay.viewers) - _connected(relay),
            "hls_viewers": rendition.client_count(time.monotonic()) if rendition else 0,
            "streams": {kind: stream.stats() for kind, stream in relay.streams.items()},
            "uplink": _uplink_stats(relay.publisher),
            "layers": relay.layers.stats(),
        }
        if self.pool is not None:
            self.pool.merge_stats(show, stats)
        return stats

    def has_viewer(self, show: str, session: str) -> bool:
        if self.pool is not None:
            return self.pool.has_viewer(show, session)
        relay = self.relays.get(show)
        return bool(relay and session in relay.viewers)

    # -- publishing (WHIP) -------------------------------------------------------

    async def publish(self, show: str, offer: bytes) -> tuple[str, str]:
        """Start (or take over) publishing; returns (session id, SDP answer)."""
        description = check_offer(offer, "publish")
        if self.pool is not None:
            await self.pool.ensure_started()
        relay = self._relay(show)
        pc = self._new_pc()
        publisher = Publisher(id=secrets.token_urlsafe(16), pc=pc, receivers={})
        video = next((m for m in description.media if m.kind == "video"), None)
        if video is not None:
            publisher.rids = simulcast.offered_rids(video, offer.decode())
            publisher.layer_list = ",".join(publisher.rids)
        try:
            # One receiver per kind the publisher sends, in the offer's order: a phone
            # whose microphone is denied sends video only, a radio-style show audio only.
            for kind in (m.kind for m in description.media):
                transceiver = pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(_publish_codecs(kind))
                receiver = glue.swap_receiver(transceiver)
                receiver.on_rtp = lambda r, p, _t, pub=publisher: relay.on_rtp(pub, r, p)
                receiver.on_sr = lambda r, ssrc, ntp, ts, pub=publisher: relay.on_sr(
                    pub, r.kind, ssrc, ntp, ts
                )
                publisher.receivers[kind] = receiver
            await pc.setRemoteDescription(RTCSessionDescription(offer.decode(), "offer"))
            if video is not None and publisher.rids:
                simulcast.accept_extensions(_transceiver_of(pc, "video"), video)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:  # aiortc refuses some offers that look fine on paper
            await _discard(pc)
            self._forget_if_idle(show)
            log.warning("show %s: a WHIP offer was refused: %r", show, exc)
            raise BadOffer(REFUSED) from None

        previous, relay.publisher = relay.publisher, publisher
        relay.layers.set_rids(publisher.rids)
        self._start_recording(show)
        recorder = self.recorders.get(show)
        if recorder is not None:
            recorder.expect(frozenset(publisher.receivers))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            state = pc.connectionState
            log.info("show %s: publisher %s is %s", show, publisher.id[:6], state)
            if state == "connected" and relay.publisher is publisher:
                publisher.connected = True
                bundled = next(iter(publisher.receivers.values()))  # one transport for all
                glue.enlarge_receive_buffer(bundled.transport)
                self.on_event(show, "publishing")
            elif state in ("failed", "closed") and relay.publisher is publisher:
                relay.publisher = None
                self.on_event(show, "publisher_lost")
                await pc.close()
                self._forget_if_idle(show)

        if previous is not None:
            self.spawn(previous.pc.close())
        answer = pc.localDescription.sdp
        if video is not None and publisher.rids:
            answer = simulcast.accept_in_answer(answer, video.rtp.muxId, publisher.rids)
        return publisher.id, announce_public_ip(answer, self.settings.public_ip)

    async def stop_publishing(self, show: str, session: str) -> bool:
        relay = self.relays.get(show)
        if relay is None or relay.publisher is None or relay.publisher.id != session:
            return False
        publisher, relay.publisher = relay.publisher, None
        await publisher.pc.close()
        self.on_event(show, "publisher_stopped")
        self._forget_if_idle(show)
        return True

    # -- watching (WHEP) ---------------------------------------------------------

    async def watch(
        self, show: str, offer: bytes, key: str = "", reserved: bool = False
    ) -> tuple[str, str]:
        """Start a viewer's session; returns (session id, SDP answer). `key` tells
        clients apart for settings.max_viewers_per_key. A `reserved` session (the show's
        staff, the host's preview) is let in past settings.max_viewers: the viewers past
        it watch the HLS rendition instead."""
        description = check_offer(offer, "play")
        relay = self.relays.get(show)
        published = self._published(relay)
        if relay is None or published is None:
            raise NotLive(show)
        if self.pool is not None:  # a relay worker owns the viewer
            await self.pool.ensure_started()
            codecs = {kind: relay.streams[kind].codec for kind in published}
            return await self.pool.watch(show, offer, list(published), codecs, key, reserved)
        if not reserved:
            self._check_room(relay, key)
        pc = self._new_pc()
        viewer = Viewer(id=secrets.token_urlsafe(16), pc=pc, downtracks={}, key=key)
        # Its place is taken now, not after the negotiation's awaits: requests arriving
        # together are counted against each other.
        relay.viewers[viewer.id] = viewer
        try:
            for kind in (m.kind for m in description.media):
                if kind not in published:
                    # The show has no such track (a video-only show and a viewer asking
                    # for audio too): answer the section as inactive, with no track.
                    transceiver = pc.addTransceiver(kind, direction="inactive")
                    transceiver.setCodecPreferences(_play_codecs(kind, ""))
                    continue
                transceiver = pc.addTransceiver(kind, direction="sendonly")
                transceiver.setCodecPreferences(_play_codecs(kind, relay.streams[kind].codec))
                sender = glue.swap_sender(transceiver)
                down = DownTrack(relay.streams[kind], viewer.id)
                sender.on_start = lambda s, params, d=down: _start_downtrack(d, s, params)
                sender.on_rtcp = down.on_rtcp
                sender.on_stop = lambda _s, d=down: d.stop()
                viewer.downtracks[kind] = down
            await pc.setRemoteDescription(RTCSessionDescription(offer.decode(), "offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            relay.viewers.pop(viewer.id, None)
            await _discard(pc)
            self._forget_if_idle(show)
            if isinstance(exc, BadOffer):
                raise
            log.warning("show %s: a WHEP offer was refused: %r", show, exc)
            raise BadOffer(REFUSED) from None
        if relay.viewers.get(viewer.id) is not viewer:  # closed while it negotiated
            await pc.close()
            raise NotLive(show)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            state = pc.connectionState
            if state == "connected" and not viewer.connected:
                if not reserved and _connected(relay) >= self.settings.max_viewers:
                    # Others connected first: the show is full after all.
                    log.info("show %s: viewer %s connected to a full show", show, viewer.id[:6])
                    await self.leave(show, viewer.id)
                else:
                    viewer.connected = True
            elif state in ("failed", "closed"):
                await self.leave(show, viewer.id)

        return viewer.id, announce_public_ip(pc.localDescription.sdp, self.settings.public_ip)

    def _published(self, relay: ShowRelay | None) -> Collection[str] | None:
        """The kinds the show's publisher sends; None: nobody publishes it."""
        return relay.publisher.receivers if relay is not None and relay.publisher else None

    def _check_room(self, relay: ShowRelay, key: str) -> None:
        """Refuse a new session when the show is full or `key` has its share.

        Only connected viewers fill the show, so sessions that never connect cannot keep
        real viewers out; they are closed after settings.ice_connect_seconds, and all
        sessions together stay under twice max_viewers (each one holds sockets).
        """
        settings = self.settings
        if _connected(relay) >= settings.max_viewers:
            raise TooManyViewers(relay.show)
        if len(relay.viewers) >= 2 * settings.max_viewers:
            raise TooManyViewers(relay.show)
        cap = settings.max_viewers_per_key
        if cap > 0 and sum(1 for v in relay.viewers.values() if v.key == key) >= cap:
            raise TooManyFromOne(relay.show)

    async def leave(self, show: str, session: str) -> bool:
        if self.pool is not None:
            left = await self.pool.leave(show, session)
            self._forget_if_idle(show)
            return left
        relay = self.relays.get(show)
        viewer = relay.viewers.pop(session, None) if relay else None
        if viewer is None:
            return False
        for down in viewer.downtracks.values():
            down.stop()
        await viewer.pc.close()
        self._forget_if_idle(show)
        return True

    def _start_recording(self, show: str) -> None:
        """Record the show from its first publisher on; a reconnect continues the same
        file. A new part starts in a new process (after a restart), or when a publisher
        comes with another video codec."""
        settings = self.settings
        if show in self.recorders or (settings.record_dir is None and not settings.hls):
            return
        tap = None
        if settings.hls:
            # The HLS rendition is fed by the recording's thread: the same depayloaded
            # H264 and the same (one) AAC encode.
            rendition = self.renditions[show] = Rendition()
            tap = HlsWriter(rendition)
        folder = settings.record_dir / f"show-{show}" if settings.record_dir else None
        self.recorders[show] = Recorder(folder, tap)

    def rendition(self, show: str) -> Rendition | None:
        """The show's HLS rendition while it is live (None: not live, or HLS is off)."""
        return self.renditions.get(show)

    def recording(self, show: str) -> Recorder | None:
        """The show's recording; None when it is not recorded (its recorder may still
        run for the HLS rendition alone, writing nothing)."""
        recorder = self.recorders.get(show)
        return recorder if recorder is not None and recorder.folder is not None else None

    async def end_show(self, show: str) -> None:
        """The show is over: close its publisher and every viewer, finish its recording."""
        recorder = self.recorders.pop(show, None)
        rendition = self.renditions.pop(show, None)
        relay = self.relays.get(show)
        if relay is not None:
            await self._close_relay(show, relay)
        if self.pool is not None:
            await self.pool.end_show(show)
        if recorder is not None:
            await asyncio.to_thread(recorder.close)
        if rendition is not None:
            rendition.close()  # its segments go with the show

    async def _close_relay(self, show: str, relay: ShowRelay) -> None:
        if relay.publisher is not None:
            publisher, relay.publisher = relay.publisher, None
            await publisher.pc.close()
        for session in list(relay.viewers):
            await self.leave(show, session)
        self.relays.pop(show, None)

    def set_video(self, show: str, session: str, enabled: bool) -> bool:
        """Pause (audio only) or resume a viewer's video, e.g. while their tab is hidden."""
        if self.pool is not None:
            return self.pool.set_video(show, session, enabled)
        relay = self.relays.get(show)
        viewer = relay.viewers.get(session) if relay else None
        if viewer is None or "video" not in viewer.downtracks:
            return False
        viewer.downtracks["video"].set_paused(not enabled)
        return True

    # -- periodic work -------------------------------------------------------------

    async def _tick_forever(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(TICK)
            ticks += 1
            now = time.monotonic()
            for show, relay in list(self.relays.items()):
                video = relay.streams["video"]
                rendition = self.renditions.get(show)
                if video.waiting_viewers() or (rendition is not None and rendition.want_keyframe):
                    video.want_keyframe(now)
                for layer in relay.layers.lower():
                    if layer.waiting_viewers():
                        layer.want_keyframe(now)
                relay.layers.keep_recording(now)
                if ticks % 4 == 0:
                    self._every_second(show, relay, now)

    def _every_second(self, show: str, relay: ShowRelay, now: float) -> None:
        video_rate = relay.layers.lowest_rate()
        for viewer in list(relay.viewers.values()):
            if not viewer.connected:
                if now - viewer.joined_at > self.settings.ice_connect_seconds:
                    log.info("show %s: viewer %s never connected", show, viewer.id[:6])
                    self.spawn(self.leave(show, viewer.id))
                continue
            newest_rtcp = 0.0
            for down in viewer.downtracks.values():
                report = down.sender_report(now)
                if report is not None and down.path is not None:
                    down.path.send_rtcp(report)
                newest_rtcp = max(newest_rtcp, down.last_rtcp)
            if now - max(newest_rtcp, viewer.joined_at) > VIEWER_SILENCE_LIMIT:
                log.info(
                    "show %s: viewer %s sent no RTCP for %.0f s",
                    show,
                    viewer.id[:6],
                    VIEWER_SILENCE_LIMIT,
                )
                self.spawn(self.leave(show, viewer.id))
                continue
            video = viewer.downtracks.get("video")
            if video is not None:
                _decide_audio_only(viewer, video, video_rate, now)
                relay.layers.steer(video, now)


def _uplink_stats(publisher: Publisher | None) -> dict[str, Any]:
    """The publisher's video uplink as the relay sees it: repairs asked and got, the
    standing queue and the bandwidth told to the publisher (REMB)."""
    receiver = publisher.receivers.get("video") if publisher else None
    if receiver is None:
        return {}
    nacks, estimator = receiver.nacks, receiver.uplink
    return {
        "lost": nacks.lost,
        "nacked": nacks.asked,
        "recovered": nacks.recovered,
        "given_up": nacks.given_up,
        "repair_rtt_ms": round(nacks.rtt * 1000),
        "queue_ms": round(estimator.queue * 1000) if estimator else None,
        "remb": estimator.estimate if estimator else None,
        "cuts": estimator.cuts if estimator else 0,
    }


def _transceiver_of(pc: RTCPeerConnection, kind: str) -> Any:
    return next(t for t in pc.getTransceivers() if t.kind == kind)


def _connected(relay: ShowRelay) -> int:
    return sum(1 for v in relay.viewers.values() if v.connected)


async def _discard(pc: RTCPeerConnection) -> None:
    """Close a peer connection made for a refused offer. aiortc may fail to close one it
    left half built (an offer with an empty a=mid has no transports): the offer is
    refused all the same, and the caller told so, never answered 500."""
    try:
        await pc.close()
    except Exception as exc:
        log.info("closing the peer connection of a refused offer failed: %r", exc)


def _decide_audio_only(viewer: Viewer, video: DownTrack, video_rate: float, now: float) -> None:
    """Selective forwarding: a viewer whose link cannot carry the video gets audio only."""
    if viewer.audio_only_since is None:
        if video.remb is not None and video_rate > 0 and video.remb < video_rate * AUDIO_ONLY_BELOW:
            viewer.audio_only_since = now
            video.set_paused(True)
    elif now - viewer.audio_only_since >= PROBE_AFTER:
        viewer.audio_only_since = None
        video.remb = None  # judge the new estimate, not the old one
        video.set_paused(False)


def _start_downtrack(down: DownTrack, sender: glue.ForwardingSender, params: Any) -> None:
    payload_types: dict[str, int] = {}
    by_pt: dict[int, str] = {}
    for codec in params.codecs:
        if codec_key(codec.mimeType) != "video/rtx":
            payload_types.setdefault(codec_key(codec.mimeType), codec.payloadType)
            by_pt[codec.payloadType] = codec_key(codec.mimeType)
    rtx_types: dict[str, int] = {}
    for codec in params.codecs:
        base = by_pt.get(codec.parameters.get("apt", -1))
        if codec_key(codec.mimeType) == "video/rtx" and base is not None:
            rtx_types.setdefault(base, codec.payloadType)
    ext_ids = tuple(sorted((e.uri, e.id) for e in params.headerExtensions))
    down.start(
        ssrc=sender._ssrc,
        cname=params.rtcp.cname or "vitrine",
        mid=params.muxId or "",
        extmap=glue.header_extensions_map(params),
        ext_ids=ext_ids,  # type: ignore[arg-type]
        payload_types=payload_types,
        rtx_types=rtx_types,
        rtx_ssrc=sender._rtx_ssrc,
        path=glue.FastPath(sender.transport),
        first_seq=secrets.randbelow(1 << 16),
        first_ts=secrets.randbelow(1 << 32),
    )


def _capabilities(kind: str) -> list[Any]:
    return list(RTCRtpSender.getCapabilities(kind).codecs)


def _publish_codecs(kind: str) -> list[Any]:
    """H264 first (replays need it), then VP8; RTX kept so publishers can repair loss."""
    caps = _capabilities(kind)
    if kind == "audio":
        return [c for c in caps if c.mimeType.lower() == "audio/opus"]
    order = {"video/h264": 0, "video/vp8": 1, "video/rtx": 2}
    return sorted(
        (c for c in caps if c.mimeType.lower() in order), key=lambda c: order[c.mimeType.lower()]
    )


def _play_codecs(kind: str, current: str) -> list[Any]:
    """The codec the publisher sends now first, the other one in case it changes."""
    caps = _capabilities(kind)
    if kind == "audio":
        return [c for c in caps if c.mimeType.lower() == "audio/opus"]
    first = current or "video/h264"
    wanted = [c for c in caps if c.mimeType.lower() in ("video/h264", "video/vp8", "video/rtx")]
    # RTX, for answering NACKs, follows the codec it repairs.
    order = {first: 0, "video/h264": 1, "video/vp8": 1, "video/rtx": 2}
    return sorted(wanted, key=lambda c: order[c.mimeType.lower()])
