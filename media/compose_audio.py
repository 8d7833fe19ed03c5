"""The sound of a replay composed with its guest (media/compose.py): the host's sound and
the guest's, mixed by FFmpeg's `amix` as they were heard live.

The guest's recording is read forward only; for each of the host's audio frames, the
guest's samples at the same wall-clock moment are cut from it (silence where the guest
was not recorded, or not on the stage), so the two inputs of the mix stay in step frame
by frame and the mix is never held waiting for one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import av
import av.filter

RATE = 48000
LAYOUT = "stereo"
BYTES = 4  # per sample: s16, two channels, interleaved


def _resampler() -> Any:
    return av.AudioResampler(format="s16", layout=LAYOUT, rate=RATE)


def recorded_parts(parts: list[list[Any]], kind: str) -> Iterator[tuple[float, Any, Any]]:
    """(wall clock of the part's start, open container, its first `kind` stream) for each
    recorded part that opens and has one; each container is closed after its turn."""
    for path, started in parts:
        try:
            source = av.open(str(path))
        except av.error.FFmpegError:
            continue
        with source:
            streams = source.streams.video if kind == "video" else source.streams.audio
            if streams:
                yield float(started), source, streams[0]


def guest_sound(parts: list[list[Any]]) -> Iterator[tuple[float, bytes]]:
    """The guest's sound as (wall clock of its first sample, s16 stereo bytes)."""
    for started, source, stream in recorded_parts(parts, "audio"):
        resampler = _resampler()
        for decoded in source.decode(stream):
            frame: Any = decoded
            if frame.pts is None or frame.time_base is None:
                continue
            at = float(started) + float(frame.pts * frame.time_base)
            for out in resampler.resample(frame):
                yield at, bytes(out.planes[0])[: out.samples * BYTES]
                at += out.samples / RATE


class GuestSound:
    """Cuts the guest's samples at a wall-clock moment, reading forward only."""

    def __init__(self, parts: list[list[Any]]) -> None:
        self.chunks = guest_sound(parts)
        self.buffer = bytearray()
        self.start = 0.0  # wall clock of buffer[0]
        self.done = False

    def _end(self) -> float:
        return self.start + len(self.buffer) / BYTES / RATE

    def take(self, wall: float, samples: int) -> bytes:
        want_end = wall + samples / RATE
        while not self.done and (not self.buffer or self._end() < want_end):
            chunk = next(self.chunks, None)
            if chunk is None:
                self.done = True
                break
            at, data = chunk
            if not self.buffer or at > self._end() + 0.1 or at < self.start:
                self.buffer, self.start = bytearray(data), at  # a gap: start afresh
            else:
                self.buffer += data
        out = bytearray(samples * BYTES)
        if self.buffer:
            offset = round((wall - self.start) * RATE)
            lo, hi = max(0, offset), min(len(self.buffer) // BYTES, offset + samples)
            if hi > lo:
                out[(lo - offset) * BYTES : (hi - offset) * BYTES] = self.buffer[
                    lo * BYTES : hi * BYTES
                ]
            drop = max(0, min(offset, len(self.buffer) // BYTES))
            if drop:
                del self.buffer[: drop * BYTES]
                self.start += drop / RATE
        return bytes(out)


def _frame(data: bytes, samples: int, pts: int) -> Any:
    frame = av.AudioFrame(format="s16", layout=LAYOUT, samples=samples)
    plane = frame.planes[0]
    plane.update(data + bytes(plane.buffer_size - len(data)))
    frame.sample_rate, frame.pts = RATE, pts
    return frame


class Mixer:
    """The host's audio frames in, the mixed AAC packets muxed into `out`."""

    def __init__(self, out: Any, parts: list[list[Any]]) -> None:
        self.out = out
        self.stream = out.add_stream("aac", rate=RATE)
        self.stream.layout = LAYOUT
        self.guest = GuestSound(parts)
        self.host = _resampler()
        self.to_aac = av.AudioResampler(format="fltp", layout=LAYOUT, rate=RATE)
        self.graph = av.filter.Graph()
        host = self.graph.add_abuffer(format="s16", sample_rate=RATE, layout=LAYOUT)
        guest = self.graph.add_abuffer(format="s16", sample_rate=RATE, layout=LAYOUT)
        mix = self.graph.add("amix", "inputs=2:duration=longest:normalize=0")
        sink = self.graph.add("abuffersink")
        host.link_to(mix, 0, 0)
        guest.link_to(mix, 0, 1)
        mix.link_to(sink)
        self.graph.configure()
        self.inputs = (host, guest)
        self.sink = sink
        self.at = 0  # samples pushed

    def frame(self, frame: Any, wall: float | None, guest_on: bool) -> None:
        for part in self.host.resample(frame):
            samples = part.samples
            data = bytes(part.planes[0])[: samples * BYTES]
            sound = (
                self.guest.take(wall, samples)
                if guest_on and wall is not None
                else bytes(samples * BYTES)
            )
            self.inputs[0].push(_frame(data, samples, self.at))
            self.inputs[1].push(_frame(sound, samples, self.at))
            if wall is not None:
                wall += samples / RATE
            self.at += samples
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                mixed: Any = self.sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            mixed.pts = None  # the encoder numbers its own frames
            for ready in self.to_aac.resample(mixed):
                self.out.mux(self.stream.encode(ready))

    def finish(self) -> None:
        for source in self.inputs:
            source.push(None)
        self._drain()
        for ready in self.to_aac.resample(None):
            self.out.mux(self.stream.encode(ready))
        self.out.mux(self.stream.encode(None))
