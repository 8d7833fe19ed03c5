"""Recording a show as it goes: the publisher's encoded video, remuxed (never re-encoded)
into a file written as it arrives, so a crash leaves a playable file up to the last
second or so. H264 goes into a fragmented MP4 (`part-NNN.mp4`); VP8, which this MP4
muxer refuses, into Matroska written cluster by cluster (`part-NNN.mkv`), turned into
H264 when the show has ended (media/transcode.py).

The event loop only queues packets (`Recorder.packet`); one thread per recording does the
rest: RTP depayloading into frames, the muxing, and the one transcode a live show needs,
Opus to AAC (what every phone's player reads in MP4). A new publisher in the same show (a
reconnect) continues the same file: its timestamps are moved to follow on from the last
ones, with the wall-clock gap between them, so they stay monotonic. A new publisher with
another video codec (another browser) closes the file and starts the next part, as a
restart does; the replay puts it right after the previous part, without the gap.

A part holds the tracks its publisher sends: video and audio, video only (a phone whose
microphone is denied) or audio only (then it opens on the first audio packet, as an MP4
of AAC alone). A publisher with another set of tracks starts the next part, as a codec
change does.
"""

from __future__ import annotations

import fractions
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av
from aiortc.codecs.h264 import H264PayloadDescriptor
from aiortc.codecs.vpx import VpxPayloadDescriptor

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
OPUS_FRAME = 960  # samples of one 20 ms Opus packet
MAX_QUEUE = 20000  # packets: about 20 s of a 720p show; more means the disk cannot keep up
FRAGMENT_SECONDS = 1.0
MOV_OPTIONS = {
    # A moov without samples up front, then one fragment per keyframe or per second: every
    # fragment is complete on disk when written, so the file plays up to the last one.
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": str(int(FRAGMENT_SECONDS * 1_000_000)),
    "flush_packets": "1",
}
# A show without video: no keyframes to cut fragments on, one fragment per second.
AUDIO_MOV_OPTIONS = {
    "movflags": "empty_moov+default_base_moof",
    "frag_duration": str(int(FRAGMENT_SECONDS * 1_000_000)),
    "flush_packets": "1",
}
BOTH = frozenset({"audio", "video"})
MKV_OPTIONS = {
    # A cluster at least every second, written whole and flushed: measured, a copy of the
    # file taken while it is written reads up to its last cluster, and a file cut inside
    # a cluster reads up to the cut. Cues and duration only come with a clean close.
    "cluster_time_limit": str(int(FRAGMENT_SECONDS * 1000)),
    "flush_packets": "1",
}


@dataclass(frozen=True, slots=True)
class VideoFormat:
    """How one video codec is recorded."""

    suffix: str
    container: str
    options: dict[str, str]
    codec: str  # the name PyAV knows the codec by, to decode and to declare the stream


FORMATS = {
    "video/h264": VideoFormat(".mp4", "mp4", MOV_OPTIONS, "h264"),
    "video/vp8": VideoFormat(".mkv", "matroska", MKV_OPTIONS, "vp8"),
}


@dataclass(slots=True)
class Incoming:
    kind: str
    codec: str
    source: str  # who sent it: a new publisher, or a new stream of one, is a new source
    rtp_ts: int
    marker: bool
    payload: bytes
    arrived: float
    kinds: frozenset[str] = BOTH  # what its publisher sends


class Timeline:
    """One stream's RTP timestamps as a monotonic presentation time in the recording,
    across RTP wrap-around and publisher changes."""

    def __init__(self, clock: int) -> None:
        self.clock = clock
        self.source = ""
        self.last_rtp = 0
        self.offset = 0  # added to the unwrapped RTP time
        self.unwrapped = 0
        self.last_pts = -1
        self.last_arrival = 0.0

    def pts(self, source: str, rtp_ts: int, arrived: float, start: float) -> int:
        if source != self.source:
            # A new publisher: start where the wall clock says we are.
            if self.last_pts < 0:
                target = int((arrived - start) * self.clock)
            else:
                target = self.last_pts + max(1, int((arrived - self.last_arrival) * self.clock))
            self.source = source
            self.unwrapped = rtp_ts
            self.offset = target - rtp_ts
        else:
            delta = (rtp_ts - self.last_rtp) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000  # a little back in time (reordering)
            self.unwrapped += delta
        self.last_rtp = rtp_ts
        pts = max(self.unwrapped + self.offset, 0)
        if pts > self.last_pts:
            self.last_pts = pts
            self.last_arrival = arrived
        return pts


class Recorder:
    """A show's recording, into `folder`: its parts are numbered on from the highest
    number there (a restart or a codec change adds a part, never overwrites one)."""

    def __init__(self, folder: Path | None, tap: Tap | None = None) -> None:
        # folder None: nothing is written to disk (recording is off), the tap alone is fed.
        self.folder = folder
        self.tap = tap
        self.path: Path | None = None  # the part being written, from its first keyframe on
        self.parts: list[Path] = []  # the parts this recorder wrote, in order
        self.error: str | None = None
        self.video_frames = 0
        self.audio_packets = 0
        self.bytes_in = 0
        self.started_at: float | None = None  # wall clock of the current part's time 0
        self.native_id: int | None = None  # the recording thread's, for CPU accounting
        # Bounded: when the disk cannot keep up, packets are dropped, never piled up.
        self._queue: queue.Queue[Incoming | None] = queue.Queue(MAX_QUEUE)
        self._kinds = BOTH
        self.dropped = 0
        name = folder.name if folder is not None else "tap only"
        self._thread = threading.Thread(target=self._run, name=f"recorder {name}", daemon=True)
        self._thread.start()

    # -- from the event loop ---------------------------------------------------------

    def packet(
        self, kind: str, codec: str, source: str, rtp_ts: int, marker: bool, payload: bytes
    ) -> None:
        if self.error is not None:
            return
        try:
            self._queue.put_nowait(
                Incoming(
                    kind,
                    codec,
                    source,
                    rtp_ts,
                    bool(marker),
                    payload,
                    time.monotonic(),
                    self._kinds,
                )
            )
        except queue.Full:
            self.dropped += 1

    def expect(self, kinds: frozenset[str]) -> None:
        """The publisher from now on sends these kinds ("audio", "video"); until told,
        both are expected. Every packet carries it, so it takes effect between the last
        packet of one publisher and the first of the next."""
        self._kinds = frozenset(kinds)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the file (blocks: call it from a worker thread)."""
        self._queue.put(None)
        self._thread.join(timeout)

    # -- the recording thread ----------------------------------------------------------

    def _run(self) -> None:
        self.native_id = threading.get_native_id()
        writer = _Writer(self)
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    break
                if self.error is None:
                    writer.take(item)
        except Exception as exc:  # a full disk, a broken stream: stop, keep what is written
            log.exception("recording %s stopped", self.path)
            self.error = str(exc) or type(exc).__name__
        finally:
            try:
                writer.close()
            except Exception as exc:
                log.exception("recording %s could not be closed", self.path)
                self.error = self.error or str(exc) or type(exc).__name__
            if self.tap is not None:
                self.tap.close()


class _Writer:
    """The recording thread's state: the open container and the streams being built."""

    def __init__(self, owner: Recorder) -> None:
        self.owner = owner
        self.container: Any = None
        self.video: Any = None
        self.audio: Any = None
        self.codec = ""  # the video codec of the open part ("" when it has no video)
        self.kinds = BOTH  # what the publisher sends
        self.part_kinds: frozenset[str] = frozenset()  # the tracks of the open part
        self.start = 0.0  # monotonic time of the open part's time 0
        self.video_time = Timeline(VIDEO_CLOCK)
        self.audio_time = Timeline(AUDIO_RATE)
        # The frame being assembled: H264 NAL units in Annex B form, or VP8 partitions.
        self.unit: list[bytes] = []
        self.unit_ts: int | None = None
        self.unit_codec = ""
        self.unit_source = ""
        self.unit_arrived = 0.0
        self.unit_whole = False  # it has its first packet (VP8 cannot do without)
        self.last_video_pts = -1
        self.opus: Any = None  # made with the first audio packet: no audio, no decoder
        self.fifo = av.AudioFifo()
        self.audio_next: int | None = None  # pts (in samples) of the next AAC frame

    # -- video: RTP -> frames -> samples ------------------------------------------------

    def expect(self, kinds: frozenset[str]) -> None:
        self.kinds = kinds
        if self.container is not None and kinds != self.part_kinds:
            # A publisher with other tracks (its microphone now allowed, say): this part
            # ends here, the next one starts with the tracks it sends.
            if self.unit:
                self._flush_unit()
            self._close_part()

    def take(self, item: Incoming) -> None:
        self.owner.bytes_in += len(item.payload)
        if item.kinds != self.kinds:
            self.expect(item.kinds)
        if item.kind == "video":
            if item.codec not in FORMATS:
                raise ValueError(f"recording {item.codec} is not supported yet")
            if self.container is not None and item.codec != self.codec:
                # Another browser took over with another codec: this part ends here, the
                # next one starts on the new codec's first keyframe.
                if self.unit:
                    self._flush_unit()
                self._close_part()
            self._video(item)
        elif item.codec == "audio/opus":
            if self.container is None and "video" not in self.kinds:
                self._open_audio_only(item.arrived)
            if self.audio is not None:
                self._audio(item)

    def _video(self, item: Incoming) -> None:
        if self.unit and (
            item.rtp_ts != self.unit_ts
            or item.source != self.unit_source
            or item.codec != self.unit_codec
        ):
            self._flush_unit()  # the marker of the previous frame was lost
        try:
            starts, data = _depayload(item.codec, item.payload)
        except ValueError:
            return
        if not self.unit:
            self.unit_whole = starts
        self.unit.append(data)
        self.unit_ts, self.unit_source, self.unit_arrived = item.rtp_ts, item.source, item.arrived
        self.unit_codec = item.codec
        if item.marker:
            self._flush_unit()

    def _flush_unit(self) -> None:
        data = b"".join(self.unit)
        ts, source, arrived = self.unit_ts, self.unit_source, self.unit_arrived
        codec, whole = self.unit_codec, self.unit_whole
        self.unit, self.unit_ts = [], None
        if not data or ts is None or not whole:
            return  # nothing, or a VP8 frame without its start: it would not decode
        keyframe = _is_keyframe(codec, data)
        if self.container is None:
            if not keyframe:
                return  # a recording starts on a keyframe
            self._open(codec, data, arrived)
        elif codec != self.codec:
            return  # the last frames of a publisher whose codec no longer is the part's
        pts = self.video_time.pts(source, ts, arrived, self.start)
        if pts <= self.last_video_pts:
            return  # a repeated or late frame
        self.last_video_pts = pts
        packet = av.Packet(data)
        packet.stream = self.video
        packet.pts = packet.dts = pts
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        packet.is_keyframe = keyframe
        self.container.mux(packet)
        self.owner.video_frames += 1
        if self.owner.tap is not None:
            self.owner.tap.video_frame(codec, data, pts, keyframe, source, self.audio is not None)

    def _open(self, codec: str, keyframe: bytes, arrived: float) -> None:
        """A part's first keyframe: learn the picture size from it, then start the file."""
        form = FORMATS[codec]
        decoder: Any = av.CodecContext.create(form.codec, "r")
        frames = decoder.decode(av.Packet(keyframe))
        if not frames:
            frames = decoder.decode(None)
        if not frames:
            raise ValueError("the first keyframe could not be read")
        width, height = frames[0].width, frames[0].height
        path = self._create(form.suffix, form.container, form.options)
        video = self.container.add_stream(form.codec, rate=30)
        video.width, video.height = width, height
        video.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        if codec == "video/h264":
            video.codec_context.extradata = _parameter_sets(keyframe)
        self.video = video
        if "audio" in self.kinds:
            self._add_audio()
        self.codec = codec
        # Every part starts at 0 on its first keyframe: the fragmented MP4 keeps no earlier
        # start (its index is written before the first sample).
        self._started(path, arrived)

    def _open_audio_only(self, arrived: float) -> None:
        """A part of a show without video, from its first audio packet on."""
        path = self._create(".mp4", "mp4", AUDIO_MOV_OPTIONS)
        self._add_audio()
        self.codec = ""
        self._started(path, arrived)

    def _create(self, suffix: str, container: str, options: dict[str, str]) -> Path | None:
        self.part_kinds = self.kinds
        folder = self.owner.folder
        if folder is None:  # not recorded: the muxing still feeds the tap
            self.container = av.open(_Discard(), "w", format=container, options=options)
            return None
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # private, as all data
        path = next_part(folder, suffix)
        self.container = av.open(str(path), "w", format=container, options=options)
        return path

    def _add_audio(self) -> None:
        audio = self.container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "stereo"
        audio.bit_rate = 96000
        self.audio = audio

    def _started(self, path: Path | None, arrived: float) -> None:
        self.start = arrived
        self.owner.started_at = time.time() - (time.monotonic() - self.start)
        if path is not None:
            self.owner.path = path
            self.owner.parts.append(path)
            _write_start(path, self.owner.started_at)

    # -- audio: Opus -> PCM -> AAC --------------------------------------------------------

    def _audio(self, item: Incoming) -> None:
        pts = self.audio_time.pts(item.source, item.rtp_ts, item.arrived, self.start)
        if self.audio_next is None:
            self.audio_next = pts
        if self.opus is None:
            self.opus = av.CodecContext.create("opus", "r")
        for frame in self.opus.decode(av.Packet(item.payload)):
            frame.pts = None
            self.fifo.write(frame)
        self.owner.audio_packets += 1
        size = self.audio.codec_context.frame_size or 1024
        while self.fifo.samples >= size:
            chunk = self.fifo.read(size)
            assert chunk is not None  # the fifo holds at least `size` samples
            chunk.pts = self.audio_next
            chunk.time_base = fractions.Fraction(1, AUDIO_RATE)
            self.audio_next += size
            for packet in self.audio.encode(chunk):
                if self.owner.tap is not None:
                    # The show's one AAC encode, shared with the HLS rendition.
                    self.owner.tap.audio_packet(bytes(packet), packet.pts, packet.duration)
                self.container.mux(packet)

    def close(self) -> None:
        if self.unit:
            self._flush_unit()
        if self.container is not None:
            self._close_part()

    def _close_part(self) -> None:
        """Finish the open part and start afresh: the next keyframe opens the next part."""
        if self.audio is not None:
            for packet in self.audio.encode(None):
                self.container.mux(packet)
        self.container.close()
        self.container = self.video = self.audio = None
        self.video_time, self.audio_time = Timeline(VIDEO_CLOCK), Timeline(AUDIO_RATE)
        self.last_video_pts = -1
        self.fifo = av.AudioFifo()
        self.audio_next = None


class Tap(Protocol):
    """Who else gets the recording's media, on the recording's thread (the HLS writer)."""

    def video_frame(
        self, codec: str, data: bytes, pts: int, keyframe: bool, source: str, with_audio: bool
    ) -> None: ...

    def audio_packet(self, data: bytes, pts: int, duration: int) -> None: ...

    def close(self) -> None: ...


class _Discard:
    """A file that keeps nothing: the muxer's output when the show is not recorded."""

    def write(self, data: bytes) -> int:
        return len(data)


def _write_start(part: Path, started_at: float) -> None:
    """`part-NNN.json` beside the part: the wall clock of its time 0, which places the
    show's pins and chat messages (stored with wall-clock times) on the replay."""
    tmp = part.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"started_at": started_at}))
    tmp.replace(part.with_suffix(".json"))


def next_part(folder: Path, suffix: str) -> Path:
    """`part-NNN<suffix>` numbered one above every part (or part's .json) in `folder`."""
    numbers = [int(p.stem[5:]) for p in folder.glob("part-*") if p.stem[5:].isdigit()]
    return folder / f"part-{max(numbers, default=0) + 1:03d}{suffix}"


def _depayload(codec: str, payload: bytes) -> tuple[bool, bytes]:
    """(whether the packet starts a frame, its part of the frame). ValueError if broken."""
    if codec == "video/vp8":
        descriptor, data = VpxPayloadDescriptor.parse(payload)
        # RFC 7741 4.1: a frame's first packet starts partition 0.
        return bool(descriptor.partition_start) and descriptor.partition_id == 0, data
    _, data = H264PayloadDescriptor.parse(payload)
    return True, data


def _is_keyframe(codec: str, data: bytes) -> bool:
    if codec == "video/vp8":
        # RFC 6386 9.1 (and RFC 7741 4.3, P bit): bit 0 of the frame tag is 0 on a key
        # frame, whose tag is followed by the start code 9d 01 2a.
        return len(data) >= 10 and not data[0] & 1 and data[3:6] == b"\x9d\x01\x2a"
    return _has_idr(data)


def _nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex B access unit (start codes 00 00 01 or 00 00 00 01)."""
    units, i = [], 0
    starts = []
    while (i := data.find(b"\x00\x00\x01", i)) != -1:
        starts.append(i + 3)
        i += 3
    for n, s in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        units.append(data[s:end].rstrip(b"\x00"))
    return units


def _has_idr(data: bytes) -> bool:
    return any(u and u[0] & 0x1F == 5 for u in _nal_units(data))


def _parameter_sets(data: bytes) -> bytes:
    """SPS and PPS of a keyframe, in Annex B form: the MP4's decoder configuration."""
    sets = [u for u in _nal_units(data) if u and u[0] & 0x1F in (7, 8)]
    return b"".join(b"\x00\x00\x00\x01" + u for u in sets)
