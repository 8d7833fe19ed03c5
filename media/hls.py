"""A show's low-latency HLS rendition, written from the packets the relay already has.

The recorder's thread (media/recorder.py) hands every H264 access unit it muxes, as sent
by the publisher, and every AAC packet of the show's one Opus-to-AAC transcode to a
`HlsWriter` (its "tap"): the video is never decoded (but for one keyframe per publisher,
to learn the picture size) nor re-encoded, and the audio is never transcoded twice.

The writer muxes them with PyAV's MP4 muxer into CMAF in memory: an init segment (ftyp +
moov), then a fragment (moof + mdat) about every PART_SECONDS and at every keyframe. Each
fragment is a part; a segment is the run of parts from one keyframe to the next keyframe
at least SEGMENT_SECONDS later. While a segment runs longer than that the writer asks for
a keyframe (`want_keyframe`, read by the plane's ticker, which asks the publisher through
the relay's rate-limited PLI). Only the last WINDOW segments are kept, in memory.

A new publisher (a reconnect, a takeover) starts a new period: a new init segment
(`init-N.mp4`, the picture size may differ), an `EXT-X-DISCONTINUITY` in the same
playlist, the same URL. A VP8 publisher (a browser without H264) has no rendition: LL-HLS
players read H264 (or VP9/AV1 in fMP4, which the publisher does not send) and the relay
never re-encodes, so such a show is WebRTC only, and the playlist answers 404 meanwhile.
A show without video (audio only) has none either.

`Rendition` is what the server reads: playlists (with `EXT-X-PART`,
`EXT-X-PRELOAD-HINT`, `EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES`,
`EXT-X-PROGRAM-DATE-TIME`), the init segments, parts (by a number running across
segments, so the preload hint is always right) and whole segments; and waits, on the
event loop, for a part that does not exist yet (blocking playlist reload).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
import secrets
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import av

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
PART_SECONDS = 0.3  # the muxer's fragment duration: a part
PART_TARGET = 0.5  # advertised: no part is longer (a part ends at 0.3 s or a keyframe)
SEGMENT_SECONDS = 1.0  # a segment ends at the first keyframe after this long
WINDOW = 8  # segments kept (about 10 s)
PARTS_LISTED = 3  # segments at the end of the playlist whose parts are listed
MOV_OPTIONS = {
    # A moov without samples, then a fragment per keyframe or per PART_SECONDS: every
    # fragment is a CMAF chunk a player can append as it is.
    "movflags": "cmaf+frag_keyframe+empty_moov+default_base_moof+skip_trailer",
    "frag_duration": str(int(PART_SECONDS * 1_000_000)),
    "flush_packets": "1",
    "video_track_timescale": str(VIDEO_CLOCK),
}
CLIENT_SECONDS = 10.0
CLIENTS_KEPT = 100_000
_SAMPLE_NON_SYNC = 0x10000


@dataclass(slots=True)
class Part:
    number: int  # runs across segments and periods
    data: bytes
    duration: float
    independent: bool


@dataclass(slots=True)
class Segment:
    msn: int
    period: int
    started_at: float  # wall clock of its first frame
    discontinuity: bool  # the first segment of a new publisher
    parts: list[Part] = field(default_factory=list)
    complete: bool = False

    @property
    def duration(self) -> float:
        return sum(p.duration for p in self.parts)


class Rendition:
    """The segments and playlist of one show, written by a thread, read on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop or asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._changed = asyncio.Event()
        self.segments: deque[Segment] = deque()
        self.inits: dict[int, bytes] = {}
        self.next_msn = 0
        self.next_part = 0
        self.discontinuities_dropped = 0
        self.target_duration = 2
        self.available = False  # has H264 to show (else: 404, the player stays on WebRTC)
        self.want_keyframe = False
        self.ended = False
        self.writer_cpu = 0.0  # seconds of the recording thread's CPU spent writing it
        self._clients: dict[str, float] = {}  # who asked for the playlist, and when
        # In every file name: a server restarted during the show starts a new rendition
        # whose numbers start again, and cached files of the old one must not be served.
        self.epoch = secrets.token_hex(4)

    # -- from the writer's thread -------------------------------------------------------

    def _notify(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def add_init(self, period: int, data: bytes) -> None:
        with self._lock:
            self.inits[period] = data
            self.available = True

    def add_part(self, period: int, part_data: bytes, duration: float, independent: bool) -> None:
        with self._lock:
            current = self.segments[-1] if self.segments else None
            new_period = current is None or current.period != period
            if current is not None and (
                new_period or (independent and current.duration >= SEGMENT_SECONDS)
            ):
                current.complete = True
                self.target_duration = max(self.target_duration, math.ceil(current.duration))
            if new_period or (current is not None and current.complete):
                if not independent:
                    self.want_keyframe = True
                    return  # a segment starts on a keyframe
                discontinuity = new_period and bool(self.segments)
                current = Segment(self.next_msn, period, time.time() - duration, discontinuity)
                self.next_msn += 1
                self.segments.append(current)
                self.want_keyframe = False
            assert current is not None
            current.parts.append(Part(self.next_part, part_data, duration, independent))
            self.next_part += 1
            if current.duration >= SEGMENT_SECONDS:
                self.want_keyframe = True
            while len(self.segments) > WINDOW:
                dropped = self.segments.popleft()
                if self.segments[0].discontinuity:
                    self.discontinuities_dropped += 1
                del dropped
            periods = {s.period for s in self.segments}
            for old in [p for p in self.inits if p not in periods and p != period]:
                del self.inits[old]
        self._notify()

    def stop_period(self) -> None:
        """The period's writer is gone (a VP8 publisher now): no new parts for now."""
        with self._lock:
            if self.segments:
                self.segments[-1].complete = True
        self._notify()

    def set_unavailable(self) -> None:
        with self._lock:
            self.available = bool(self.segments)
        self._notify()

    def close(self) -> None:
        """The show is over: the segments go, waiting requests are answered."""
        with self._lock:
            self.ended = True
            self.segments.clear()
            self.inits.clear()
            self.available = False
        self._notify()

    # -- from the event loop ------------------------------------------------------------

    def has(self, msn: int, part: int | None) -> bool:
        """Whether the playlist holds segment `msn` whole (`part` None) or its part `part`
        (or a later segment: that part never came, the segment ended before it)."""
        with self._lock:
            if not self.segments:
                return self.ended
            last = self.segments[-1]
            if last.msn > msn:
                return True
            if last.msn < msn:
                return self.ended
            if part is None:
                return last.complete
            return len(last.parts) > part or last.complete

    def note_client(self, key: str, now: float) -> None:
        """`key` (a viewer, or an address) asked for the playlist at `now` (monotonic)."""
        if key not in self._clients and len(self._clients) >= CLIENTS_KEPT:
            self.client_count(now)  # make room: forget those gone quiet
            if len(self._clients) >= CLIENTS_KEPT:
                return
        self._clients[key] = now

    def client_count(self, now: float) -> int:
        """HLS clients that asked for the playlist in the last CLIENT_SECONDS (a player
        asks every part; a cache in front of this server counts as one)."""
        gone = [k for k, seen in self._clients.items() if now - seen > CLIENT_SECONDS]
        for key in gone:
            del self._clients[key]
        return len(self._clients)

    def has_part(self, number: int) -> bool:
        with self._lock:
            return self.next_part > number or self.ended

    def last_msn(self) -> int:
        with self._lock:
            return self.segments[-1].msn if self.segments else -1

    async def wait(self, ready: Any, within: float) -> bool:
        """Wait until `ready()` is true, at most `within` seconds; returns `ready()`."""
        deadline = self._loop.time() + within
        while not ready():
            left = deadline - self._loop.time()
            if left <= 0:
                return False
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), left)
            except TimeoutError:
                return bool(ready())
        return True

    def playlist(self) -> str | None:
        """The media playlist, None while there is nothing to play. Its URIs are relative:
        `<epoch>/init-<period>.mp4`, `<epoch>/p<part>.m4s` and `<epoch>/s<msn>.m4s`."""
        base = f"{self.epoch}/"
        with self._lock:
            if not self.segments or not self.available:
                return None
            segments = list(self.segments)
            lines = [
                "#EXTM3U",
                "#EXT-X-VERSION:9",
                f"#EXT-X-TARGETDURATION:{self.target_duration}",
                f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={3 * PART_TARGET:.3f}",
                f"#EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3f}",
                f"#EXT-X-MEDIA-SEQUENCE:{segments[0].msn}",
                f"#EXT-X-DISCONTINUITY-SEQUENCE:{self.discontinuities_dropped}",
                f'#EXT-X-MAP:URI="{base}init-{segments[0].period}.mp4"',
            ]
            for n, segment in enumerate(segments):
                if n and segment.discontinuity:
                    lines.append("#EXT-X-DISCONTINUITY")
                    lines.append(f'#EXT-X-MAP:URI="{base}init-{segment.period}.mp4"')
                stamp = datetime.fromtimestamp(segment.started_at, UTC)
                lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{stamp.isoformat(timespec='milliseconds')}")
                if n >= len(segments) - PARTS_LISTED:
                    for part in segment.parts:
                        extra = ",INDEPENDENT=YES" if part.independent else ""
                        lines.append(
                            f"#EXT-X-PART:DURATION={part.duration:.5f},"
                            f'URI="{base}p{part.number}.m4s"{extra}'
                        )
                if segment.complete:
                    lines.append(f"#EXTINF:{segment.duration:.5f},")
                    lines.append(f"{base}s{segment.msn}.m4s")
            if not self.ended:
                lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{base}p{self.next_part}.m4s"')
            else:
                lines.append("#EXT-X-ENDLIST")
            return "\n".join(lines) + "\n"

    def init(self, period: int | None = None) -> bytes | None:
        with self._lock:
            if period is None:
                period = max(self.inits, default=-1)
            return self.inits.get(period)

    def part(self, number: int) -> bytes | None:
        with self._lock:
            for segment in self.segments:
                if segment.parts and segment.parts[0].number <= number <= segment.parts[-1].number:
                    return segment.parts[number - segment.parts[0].number].data
            return None

    def segment(self, msn: int) -> bytes | None:
        with self._lock:
            for segment in self.segments:
                if segment.msn == msn and segment.complete:
                    return b"".join(p.data for p in segment.parts)
            return None


class _Boxes:
    """A file-like sink for the muxer: splits what it writes into top-level MP4 boxes."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.boxes: list[tuple[bytes, bytes]] = []

    def write(self, data: bytes) -> int:
        self.buffer += data
        while len(self.buffer) >= 8:
            size, kind = struct.unpack_from(">I4s", self.buffer)
            if size < 8 or len(self.buffer) < size:
                break
            self.boxes.append((kind, bytes(self.buffer[:size])))
            del self.buffer[:size]
        return len(data)


class HlsWriter:
    """The recorder thread's tap: muxes what it is given into `rendition`."""

    def __init__(self, rendition: Rendition) -> None:
        self.rendition = rendition
        self.period = -1
        self.source = ""
        self.container: Any = None
        self.video: Any = None
        self.audio: Any = None
        self.sink = _Boxes()
        self.init: list[bytes] = []
        self.pending_moof: bytes | None = None
        self.first_pts: int | None = None  # video pts (90 kHz) of the period's first frame
        self.last_pts = -1
        self.failed = False

    def video_frame(
        self, codec: str, data: bytes, pts: int, keyframe: bool, source: str, with_audio: bool
    ) -> None:
        if self.failed:
            return
        started = time.thread_time()
        try:
            self._video_frame(codec, data, pts, keyframe, source, with_audio)
        except Exception:  # a broken stream: the rendition stops, the show goes on
            log.exception("the HLS rendition stopped")
            self.failed = True
            self._close()
            self.rendition.stop_period()
        self.rendition.writer_cpu += time.thread_time() - started

    def _video_frame(
        self, codec: str, data: bytes, pts: int, keyframe: bool, source: str, with_audio: bool
    ) -> None:
        if codec != "video/h264":
            if self.container is not None:
                self._close()
                self.rendition.stop_period()
            self.rendition.set_unavailable()
            self.source = ""
            return
        if source != self.source or self.container is None:
            if not keyframe:
                self.rendition.want_keyframe = True
                return
            self._open(data, with_audio)
            self.source = source
            self.first_pts = pts
        if pts <= self.last_pts:
            return
        self.last_pts = pts
        packet = av.Packet(data)
        packet.stream = self.video
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        packet.is_keyframe = keyframe
        self.container.mux(packet)
        self._take_boxes()

    def audio_packet(self, data: bytes, pts: int, duration: int) -> None:
        """One AAC packet of the recorder's transcode; pts and duration in 1/48000 s."""
        if self.failed or self.audio is None or self.first_pts is None:
            return
        if pts * VIDEO_CLOCK < self.first_pts * AUDIO_RATE:
            return  # before the period's first keyframe
        started = time.thread_time()
        try:
            packet = av.Packet(data)
            packet.stream = self.audio
            packet.pts = packet.dts = pts
            packet.duration = duration
            packet.time_base = fractions.Fraction(1, AUDIO_RATE)
            self.container.mux(packet)
            self._take_boxes()
        except Exception:
            log.exception("the HLS rendition's audio stopped")
            self.audio = None
        self.rendition.writer_cpu += time.thread_time() - started

    def _open(self, keyframe: bytes, with_audio: bool) -> None:
        from media.recorder import _parameter_sets  # the same H264 helpers as the recording

        self._close()
        decoder: Any = av.CodecContext.create("h264", "r")
        frames = decoder.decode(av.Packet(keyframe)) or decoder.decode(None)
        if not frames:
            raise ValueError("the first keyframe could not be read")
        self.period += 1
        self.sink = _Boxes()
        self.init = []
        self.pending_moof = None
        self.last_pts = -1
        self.container = av.open(self.sink, "w", format="mp4", options=MOV_OPTIONS)
        video = self.container.add_stream("h264", rate=30)
        video.width, video.height = frames[0].width, frames[0].height
        video.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        video.codec_context.extradata = _parameter_sets(keyframe)
        self.video = video
        self.audio = None
        if with_audio:
            audio = self.container.add_stream("aac", rate=AUDIO_RATE)
            audio.layout = "stereo"
            audio.bit_rate = 96000
            audio.time_base = fractions.Fraction(1, AUDIO_RATE)
            self.audio = audio

    def _take_boxes(self) -> None:
        boxes, self.sink.boxes = self.sink.boxes, []
        for kind, data in boxes:
            if kind in (b"ftyp", b"moov"):
                self.init.append(data)
                if kind == b"moov":
                    self.rendition.add_init(self.period, b"".join(self.init))
            elif kind == b"moof":
                self.pending_moof = data
            elif kind == b"mdat" and self.pending_moof is not None:
                moof, self.pending_moof = self.pending_moof, None
                duration, independent = fragment_info(moof)
                self.rendition.add_part(self.period, moof + data, duration, independent)

    def _close(self) -> None:
        container, self.container = self.container, None
        self.video = self.audio = None
        if container is not None:
            try:
                container.close()
            except Exception as exc:
                log.info("closing an HLS period: %r", exc)

    def close(self) -> None:
        self._close()


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes in data[start:end]."""
    out = []
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        if size < 8 or start + size > end:
            break
        out.append((kind, start + 8, start + size))
        start += size
    return out


def fragment_info(moof: bytes, track: int = 1, timescale: int = VIDEO_CLOCK) -> tuple[float, bool]:
    """(duration in seconds, starts on a sync sample) of a fragment's `track` (the video:
    track 1 here, its time in 1/`timescale` s): read from its tfhd and trun (ISO/IEC
    14496-12 8.8)."""
    duration = 0
    independent = False
    for kind, start, end in _children(moof, 0, len(moof)):
        if kind != b"moof":
            continue
        for tkind, tstart, tend in _children(moof, start, end):
            if tkind != b"traf":
                continue
            track_id, default_duration, default_flags = 0, 0, 0
            for bkind, bstart, _bend in _children(moof, tstart, tend):
                flags = int.from_bytes(moof[bstart + 1 : bstart + 4], "big")
                if bkind == b"tfhd":
                    (track_id,) = struct.unpack_from(">I", moof, bstart + 4)
                    at = bstart + 8
                    if flags & 0x1:
                        at += 8
                    if flags & 0x2:
                        at += 4
                    if flags & 0x8:
                        (default_duration,) = struct.unpack_from(">I", moof, at)
                        at += 4
                    if flags & 0x10:
                        at += 4
                    if flags & 0x20:
                        (default_flags,) = struct.unpack_from(">I", moof, at)
                elif bkind == b"trun" and track_id == track:
                    (count,) = struct.unpack_from(">I", moof, bstart + 4)
                    at = bstart + 8
                    if flags & 0x1:
                        at += 4
                    first_flags = None
                    if flags & 0x4:
                        (first_flags,) = struct.unpack_from(">I", moof, at)
                        at += 4
                    for n in range(count):
                        sample_duration, sample_flags = default_duration, default_flags
                        if flags & 0x100:
                            (sample_duration,) = struct.unpack_from(">I", moof, at)
                            at += 4
                        if flags & 0x200:
                            at += 4
                        if flags & 0x400:
                            (sample_flags,) = struct.unpack_from(">I", moof, at)
                            at += 4
                        if flags & 0x800:
                            at += 4
                        if n == 0:
                            chosen = first_flags if first_flags is not None else sample_flags
                            independent = not chosen & _SAMPLE_NON_SYNC
                        duration += sample_duration
    return duration / timescale, independent
