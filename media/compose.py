"""A show with a guest becomes one replay: the host's replay and the guest's recording,
drawn together as viewers saw them live (side by side, or the guest inset), following the
stage's changes over time.

It runs once, when the show has ended and its replay is made, in a child process at the
lowest priority on one CPU, as media/transcode.py does. The host's replay gives the
picture size and the frame times; each of its frames is placed on the wall clock by the
replay's timeline, and the guest's picture at that moment (their parts carry their
wall-clock start, `part-NNN.json`) is drawn in when the stage said a guest was on. The
sound is the host's and the guest's mixed the same way (media/compose_audio.py).
The result is written under a temporary name and renamed over the replay when complete.

Run by hand: `python -m media.compose SPEC.json` (the fields of `Spec`).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import ctypes
import json
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from media.compose_audio import Mixer, recorded_parts
from media.transcode import PACKAGE_ROOT, _Encoder, _h264_stream, keep_out_of_the_way

STALE_SECONDS = 2.0  # a guest picture older than this at a moment: the guest is not shown
INSET = 3  # the inset guest is a third of the picture's width and height
MARGIN = 0.03  # of the picture's width, around the inset


class ComposeError(RuntimeError):
    """The composition failed; the message says why."""


@dataclass(frozen=True)
class Spec:
    main: str  # the host's replay (MP4)
    timeline: list[list[float]]  # [[wall clock, replay start, replay end], ...]
    guest_parts: list[list[Any]]  # [[path, wall clock of its time 0], ...] in order
    stage: list[list[Any]]  # [[wall clock, guest on, layout], ...] in order
    out: str

    @classmethod
    def read(cls, path: Path) -> Spec:
        raw = json.loads(path.read_text())
        return cls(raw["main"], raw["timeline"], raw["guest_parts"], raw["stage"], raw["out"])


class StageAt:
    """Whether the guest is on, and the layout, at a wall-clock moment."""

    def __init__(self, changes: list[list[Any]]) -> None:
        self.times = [float(c[0]) for c in changes]
        self.states = [(bool(c[1]), str(c[2])) for c in changes]

    def at(self, wall: float) -> tuple[bool, str]:
        n = bisect.bisect_right(self.times, wall)
        return self.states[n - 1] if n else (False, "side")


def wall_of(timeline: list[list[float]], t: float) -> float | None:
    """The wall clock of replay time `t` (None: no timeline)."""
    best = None
    for wall, begin, end in timeline:
        if t >= begin or best is None:
            best = wall + (t - begin)
        if begin <= t < end:
            return wall + (t - begin)
    return best


def guest_frames(parts: list[list[Any]]) -> Iterator[tuple[float, Any]]:
    """The guest's frames in order, each with its wall-clock time."""
    for started, source, stream in recorded_parts(parts, "video"):
        stream.codec_context.thread_count = 1
        for packet in source.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue
            for frame in frames:
                if frame.pts is not None and frame.time_base is not None:
                    yield float(started) + float(frame.pts * frame.time_base), frame


class GuestCursor:
    """The guest's newest picture at a wall-clock moment, reading forward only."""

    def __init__(self, parts: list[list[Any]]) -> None:
        self.frames = guest_frames(parts)
        self.current: tuple[float, Any] | None = None
        self.upcoming: tuple[float, Any] | None = next(self.frames, None)

    def at(self, wall: float) -> Any:
        while self.upcoming is not None and self.upcoming[0] <= wall:
            self.current = self.upcoming
            self.upcoming = next(self.frames, None)
        if self.current is None or wall - self.current[0] > STALE_SECONDS:
            return None
        return self.current[1]


Planes = tuple[bytearray, bytearray, bytearray]  # yuv420p, tightly packed
BLACK = (16, 128, 128)


def blank(width: int, height: int) -> Planes:
    return (
        bytearray([BLACK[0]]) * (width * height),
        bytearray([BLACK[1]]) * (width * height // 4),
        bytearray([BLACK[2]]) * (width * height // 4),
    )


def paste(dst: Planes, dst_width: int, src: Planes, src_width: int, x: int, y: int) -> None:
    """Copy the `src` picture into `dst` at (x, y), both even."""
    src_height = len(src[0]) // src_width
    for n in range(3):
        shift = 0 if n == 0 else 1
        dw, sw = dst_width >> shift, src_width >> shift
        dx, dy = x >> shift, y >> shift
        to, frm = dst[n], src[n]
        for row in range(src_height >> shift):
            at = (dy + row) * dw + dx
            to[at : at + sw] = frm[row * sw : row * sw + sw]


def fitted(frame: Any, width: int, height: int) -> Planes:
    """`frame` scaled to fit a `width` x `height` box (even sizes), centred on black."""
    scale = min(width / frame.width, height / frame.height)
    w = min(width, max(2, round(frame.width * scale / 2) * 2))
    h = min(height, max(2, round(frame.height * scale / 2) * 2))
    picture = frame.reformat(width=w, height=h, format="yuv420p")
    tight: list[bytearray] = []
    for n, plane in enumerate(picture.planes):
        pw, ph = (w, h) if n == 0 else (w // 2, h // 2)
        data, line = bytes(plane), plane.line_size
        tight.append(bytearray(b"".join(data[r * line : r * line + pw] for r in range(ph))))
    scaled: Planes = (tight[0], tight[1], tight[2])
    if (w, h) == (width, height):
        return scaled
    box = blank(width, height)
    paste(box, width, scaled, w, (width - w) // 4 * 2, (height - h) // 4 * 2)
    return box


def draw(main: Any, guest: Any, layout: str, width: int, height: int) -> Planes:
    """One frame of the stage: host and guest side by side (halves along the longer
    side: left and right in landscape, top and bottom in portrait), or the guest inset
    in the bottom right corner of the host's picture."""
    if layout == "side":
        canvas = blank(width, height)
        if width >= height:
            half = width // 4 * 2
            paste(canvas, width, fitted(main, half, height), half, 0, 0)
            paste(canvas, width, fitted(guest, width - half, height), width - half, half, 0)
        else:
            half = height // 4 * 2
            paste(canvas, width, fitted(main, width, half), width, 0, 0)
            paste(canvas, width, fitted(guest, width, height - half), width, 0, half)
        return canvas
    canvas = fitted(main, width, height)
    iw, ih = width // INSET // 2 * 2, height // INSET // 2 * 2
    margin = int(width * MARGIN) // 2 * 2
    paste(canvas, width, fitted(guest, iw, ih), iw, width - iw - margin, height - ih - margin)
    return canvas


def as_frame(planes: Planes | tuple[bytes, bytes, bytes], width: int, height: int) -> Any:
    """A yuv420p frame from tightly packed planes."""
    frame = av.VideoFrame(width, height, "yuv420p")
    for n, plane in enumerate(frame.planes):
        pw, ph = (width, height) if n == 0 else (width // 2, height // 2)
        line, data = plane.line_size, planes[n]
        if line != pw:
            pad = bytes(line - pw)
            data = b"".join(data[r * pw : r * pw + pw] + pad for r in range(ph))
        plane.update(bytes(data))
    return frame


def compose(spec: Spec) -> int:
    """Write spec.out; returns the number of frames that show the guest."""
    out_path = Path(spec.out)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    stage = StageAt(spec.stage)
    guest = GuestCursor(spec.guest_parts)
    shown = 0
    try:
        with av.open(spec.main) as source, av.open(str(tmp), "w", format="mp4") as out:
            if not source.streams.video:
                raise ComposeError("the replay holds no video")
            video_in = source.streams.video[0]
            video_in.codec_context.thread_count = 1
            audio_in = source.streams.audio[0] if source.streams.audio else None
            video_out = _h264_stream(out, video_in)
            # The encoder counts in the replay's own time base: a live recording's average
            # rate (29.99...) as a time base rounds neighbouring frames onto one time.
            video_out.codec_context.time_base = video_in.time_base
            mixer = Mixer(out, spec.guest_parts) if audio_in is not None else None
            width, height = video_out.width, video_out.height
            encoder = _Encoder(out, video_out)
            last_pts: int | None = None
            wanted = [s for s in (video_in, audio_in) if s is not None]
            for packet in source.demux(*wanted):
                if packet.stream is video_in:
                    try:
                        frames = packet.decode()
                    except av.error.InvalidDataError:
                        continue
                    for decoded in frames:
                        frame: Any = decoded
                        if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                            continue  # a repeated time: the encoder needs them increasing
                        last_pts = frame.pts
                        wall = wall_of(spec.timeline, float(frame.pts * frame.time_base))
                        on, layout = stage.at(wall) if wall is not None else (False, "side")
                        picture = guest.at(wall) if on and wall is not None else None
                        if picture is not None:
                            pts, time_base = frame.pts, frame.time_base
                            frame = as_frame(
                                draw(frame, picture, layout, width, height), width, height
                            )
                            frame.pts, frame.time_base = pts, time_base
                            shown += 1
                        encoder.frame(frame)
                elif packet.dts is not None and packet.size and mixer is not None:
                    try:
                        sounds = packet.decode()
                    except av.error.InvalidDataError:
                        continue
                    for decoded_sound in sounds:
                        sound: Any = decoded_sound
                        if sound.pts is None:
                            continue
                        at = wall_of(spec.timeline, float(sound.pts * sound.time_base))
                        mixer.frame(sound, at, at is not None and stage.at(at)[0])
            encoder.finish()
            if mixer is not None:
                mixer.finish()
        # +faststart: a second pass moving the index to the front, without re-encoding.
        faststart(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return shown


def faststart(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.fast.tmp")
    try:
        with (
            av.open(str(src)) as source,
            av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out,
        ):
            streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
            for packet in source.demux():
                if packet.dts is None:
                    continue
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


async def compose_in_child(spec_path: Path) -> None:
    """Run the composition of `spec_path` in a child process at the lowest priority.
    Cancelling kills the child."""
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "media.compose",
        str(spec_path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        _, err = await child.communicate()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        raise ComposeError(lines[-1][:300] if lines else f"exit status {child.returncode}")


def die_with_parent() -> None:
    """A server killed outright (kill -9) takes its composition with it: the restarted
    server composes again, and no orphan keeps a core busy meanwhile (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m media.compose SPEC.json", file=sys.stderr)
        return 2
    die_with_parent()
    keep_out_of_the_way()
    try:
        compose(Spec.read(Path(args[0])))
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
