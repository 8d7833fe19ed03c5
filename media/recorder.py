"""Recording a show as it goes: the publisher's encoded video, remuxed (never re-encoded)
into a fragmented MP4 written as it arrives, so a crash leaves a playable file up to the
last second or so.

The event loop only queues packets (`Recorder.packet`); one thread per recording does the
rest: H264 RTP depayloading into access units, the MP4 muxing, and the one transcode a
show needs, Opus to AAC (what every phone's player reads in MP4). A new publisher in the
same show (a reconnect) continues the same file: its timestamps are moved to follow on
from the last ones, with the wall-clock gap between them, so they stay monotonic.
"""

from __future__ import annotations

import fractions
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
from aiortc.codecs.h264 import H264PayloadDescriptor

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


@dataclass(slots=True)
class Incoming:
    kind: str
    codec: str
    source: str  # who sent it: a new publisher, or a new stream of one, is a new source
    rtp_ts: int
    marker: bool
    payload: bytes
    arrived: float


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
    def __init__(self, path: Path) -> None:
        self.path = path
        self.error: str | None = None
        self.video_frames = 0
        self.audio_packets = 0
        self.bytes_in = 0
        self.started_at: float | None = None  # wall clock of the recording's time 0
        self.native_id: int | None = None  # the recording thread's, for CPU accounting
        # Bounded: when the disk cannot keep up, packets are dropped, never piled up.
        self._queue: queue.Queue[Incoming | None] = queue.Queue(MAX_QUEUE)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"recorder {path.name}", daemon=True)
        self._thread.start()

    # -- from the event loop ---------------------------------------------------------

    def packet(
        self, kind: str, codec: str, source: str, rtp_ts: int, marker: bool, payload: bytes
    ) -> None:
        if self.error is not None:
            return
        try:
            self._queue.put_nowait(
                Incoming(kind, codec, source, rtp_ts, bool(marker), payload, time.monotonic())
            )
        except queue.Full:
            self.dropped += 1

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


class _Writer:
    """The recording thread's state: the open container and the streams being built."""

    def __init__(self, owner: Recorder) -> None:
        self.owner = owner
        self.container: Any = None
        self.video: Any = None
        self.audio: Any = None
        self.start = 0.0  # monotonic time of the recording's time 0
        self.video_time = Timeline(VIDEO_CLOCK)
        self.audio_time = Timeline(AUDIO_RATE)
        self.unit: list[bytes] = []  # the access unit being assembled (Annex B NAL units)
        self.unit_ts: int | None = None
        self.unit_source = ""
        self.unit_arrived = 0.0
        self.last_video_pts = -1
        self.opus = av.CodecContext.create("opus", "r")
        self.fifo = av.AudioFifo()
        self.audio_next: int | None = None  # pts (in samples) of the next AAC frame

    # -- video: RTP -> access units -> MP4 samples --------------------------------------

    def take(self, item: Incoming) -> None:
        self.owner.bytes_in += len(item.payload)
        if item.kind == "video":
            if item.codec != "video/h264":
                raise ValueError(f"recording {item.codec} is not supported yet")
            self._video(item)
        elif self.container is not None and item.codec == "audio/opus":
            self._audio(item)

    def _video(self, item: Incoming) -> None:
        if self.unit and (item.rtp_ts != self.unit_ts or item.source != self.unit_source):
            self._flush_unit()  # the marker of the previous frame was lost
        try:
            _, data = H264PayloadDescriptor.parse(item.payload)
        except ValueError:
            return
        self.unit.append(data)
        self.unit_ts, self.unit_source, self.unit_arrived = item.rtp_ts, item.source, item.arrived
        if item.marker:
            self._flush_unit()

    def _flush_unit(self) -> None:
        data = b"".join(self.unit)
        ts, source, arrived = self.unit_ts, self.unit_source, self.unit_arrived
        self.unit, self.unit_ts = [], None
        if not data or ts is None:
            return
        keyframe = _has_idr(data)
        if self.container is None:
            if not keyframe:
                return  # a recording starts on a keyframe
            self._open(data, arrived)
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

    def _open(self, keyframe: bytes, arrived: float) -> None:
        """The first keyframe: learn the picture size from it, then start the file."""
        decoder = av.CodecContext.create("h264", "r")
        frames = decoder.decode(av.Packet(keyframe))
        if not frames:
            frames = decoder.decode(None)
        if not frames:
            raise ValueError("the first keyframe could not be read")
        width, height = frames[0].width, frames[0].height
        self.owner.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.owner.path), "w", format="mp4", options=MOV_OPTIONS)
        video = self.container.add_stream("h264", rate=30)
        video.width, video.height = width, height
        video.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        video.codec_context.extradata = _parameter_sets(keyframe)
        self.video = video
        audio = self.container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "stereo"
        audio.bit_rate = 96000
        self.audio = audio
        self.start = arrived
        self.owner.started_at = time.time() - (time.monotonic() - arrived)

    # -- audio: Opus -> PCM -> AAC --------------------------------------------------------

    def _audio(self, item: Incoming) -> None:
        pts = self.audio_time.pts(item.source, item.rtp_ts, item.arrived, self.start)
        if self.audio_next is None:
            self.audio_next = pts
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
                self.container.mux(packet)

    def close(self) -> None:
        if self.unit:
            self._flush_unit()
        if self.container is None:
            return
        for packet in self.audio.encode(None):
            self.container.mux(packet)
        self.container.close()


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
