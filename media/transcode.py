"""The one video transcode a replay may need: a part recorded in VP8 (media/recorder.py
keeps it as sent, in Matroska) becomes H264 in MP4, which every phone's player reads.

It runs when the show has ended, in a child process that keeps out of the live server's
way: nice 19, one encoder thread, pinned to one CPU (the last one it may use, so that
several shows ending together still share that one core). Timestamps are kept, so the
result lines up with its part's `part-NNN.json` exactly as the part did; a copy of that
file is written beside the result. Results live in `h264/` beside the parts, written
under a temporary name and renamed when complete, and are reused when the replay is made
again (a restart while it was being made).

Run by hand: `python -m media.transcode PART.mkv OUT.mp4`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import av

FOLDER = "h264"  # beside the parts; a glob for part-*.mp4 does not look inside
PRESET = "veryfast"
CRF = 23
KEYFRAME_SECONDS = 2.0
# A ceiling on the bit rate, per pixel of the picture: 1.8 Mbit/s at 720p, what browsers
# send in H264 at that size, so a detailed scene does not come out at several times that.
MAX_BITS_PER_PIXEL = 2
MAX_ERROR = 300  # characters of the child's complaint kept in the error
PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # where the child imports `media` from


class TranscodeError(RuntimeError):
    """A part could not be turned into H264; the message says which and why."""


async def ensure_h264(parts: list[Path]) -> list[Path]:
    """`parts`, in the same order, with every part whose video is not H264 replaced by
    its H264 transcode (made now in a child process, or kept from an earlier run).
    Parts that cannot be read are passed on as they are: finalize skips them.
    Cancelling kills the child."""
    out = []
    for part in parts:
        codec = await asyncio.to_thread(video_codec, part)
        if codec is None or codec == "h264":
            out.append(part)
            continue
        target = h264_path(part)
        if not await asyncio.to_thread(_up_to_date, target, part):
            await _run_child(part, target)
        out.append(target)
    return out


def h264_path(part: Path) -> Path:
    return part.parent / FOLDER / f"{part.stem}.mp4"


def video_codec(path: Path) -> str | None:
    """The name of the first video stream's codec, or None when there is none to read."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return None
            return str(container.streams.video[0].codec_context.name)
    except av.error.FFmpegError:
        return None


def _up_to_date(target: Path, part: Path) -> bool:
    try:
        return target.stat().st_mtime >= part.stat().st_mtime
    except OSError:
        return False


async def _run_child(part: Path, target: Path) -> None:
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "media.transcode",
        str(part),
        str(target),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": path},
    )
    try:
        _, err = await child.communicate()
    except BaseException:  # cancelled: the child must not go on alone
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        for left in (target, target.with_suffix(".json")):
            _tmp_path(left, child.pid).unlink(missing_ok=True)
        raise
    if child.returncode != 0:
        lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
        why = lines[-1].strip() if lines else f"exit status {child.returncode}"
        raise TranscodeError(f"{part.name} could not be converted to H264: {why[:MAX_ERROR]}")


# -- in the child process ----------------------------------------------------------------


def keep_out_of_the_way() -> None:
    """Lowest priority, and one CPU (threads started later inherit it)."""
    os.nice(19)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})


def transcode(src: Path, dst: Path) -> None:
    """Write `dst` (MP4: H264, and the AAC audio of `src` copied) from `src`, keeping
    every timestamp; then `dst`'s `.json` from `src`'s. Atomic: `dst` is whole or absent."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(dst, os.getpid())
    json_tmp = _tmp_path(dst.with_suffix(".json"), os.getpid())
    try:
        _encode(src, tmp)
        start = src.with_suffix(".json")
        if start.exists():
            shutil.copyfile(start, json_tmp)
            json_tmp.replace(dst.with_suffix(".json"))
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
        json_tmp.unlink(missing_ok=True)


def _tmp_path(dst: Path, pid: int) -> Path:
    return dst.with_name(f".{dst.name}.{pid}.tmp")


def _encode(src: Path, out_path: Path) -> None:
    with av.open(str(src)) as source, av.open(str(out_path), "w", format="mp4") as out:
        if not source.streams.video:
            raise TranscodeError(f"{src.name} holds no video")
        video_in = source.streams.video[0]
        video_in.codec_context.thread_count = 1
        audio_in = source.streams.audio[0] if source.streams.audio else None
        if audio_in is not None and audio_in.codec_context.name != "aac":
            raise TranscodeError(f"{src.name}: audio {audio_in.codec_context.name}, not AAC")
        video_out = _h264_stream(out, video_in)
        audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
        audio_times = _AudioTimes(audio_in.codec_context) if audio_in is not None else None
        encoder = _Encoder(out, video_out)
        wanted: list[Any] = [s for s in (video_in, audio_in) if s is not None]
        for packet in source.demux(*wanted):
            if packet.stream is video_in:
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError:
                    continue  # a frame damaged by loss: the next ones may still decode
                for frame in frames:
                    encoder.frame(frame)
            elif packet.dts is not None and packet.size and audio_times is not None:
                audio_times.place(packet)
                packet.stream = audio_out
                out.mux(packet)
        encoder.finish()


def _h264_stream(out: Any, video_in: Any) -> Any:
    rate = video_in.average_rate or video_in.guessed_rate or 30
    stream = out.add_stream("libx264", rate=rate)
    # yuv420p wants even sizes; a VP8 picture may be odd.
    stream.width = max(2, video_in.codec_context.width // 2 * 2)
    stream.height = max(2, video_in.codec_context.height // 2 * 2)
    stream.pix_fmt = "yuv420p"
    stream.time_base = video_in.time_base
    ctx = stream.codec_context
    ctx.thread_count = 1
    maxrate = MAX_BITS_PER_PIXEL * stream.width * stream.height
    ctx.gop_size = int(10 * KEYFRAME_SECONDS * float(rate))  # keyframes are forced by time
    ctx.options = {
        "preset": PRESET,
        "crf": str(CRF),
        "maxrate": str(maxrate),
        "bufsize": str(2 * maxrate),
        "forced-idr": "1",
        # No B-frames: decode order is presentation order, so a part's first timestamp
        # is its first decode timestamp and finalize can put parts end to end. Headers
        # on every keyframe, as the live H264 parts have them, so a replay joining parts
        # from different encoders decodes.
        "bf": "0",
        "x264-params": "repeat-headers=1:scenecut=0",
    }
    return stream


class _AudioTimes:
    """Matroska keeps milliseconds, so an AAC frame (1024 samples, 21.33 ms) comes back
    21 or 22 ms after the previous one. Put each frame right after the previous one
    again, in samples, unless it is really further (a gap in the sound)."""

    def __init__(self, codec: Any) -> None:
        self.rate = codec.sample_rate or 48000
        self.size = codec.frame_size or 1024
        self.next: int | None = None

    def place(self, packet: Any) -> None:
        at = round(packet.pts * packet.time_base * self.rate)
        if self.next is not None and abs(at - self.next) <= self.rate // 1000 + 1:
            at = self.next
        packet.time_base = fractions.Fraction(1, self.rate)
        packet.pts = packet.dts = at
        packet.duration = self.size
        self.next = at + self.size


class _Encoder:
    """Frames into H264 packets, a keyframe every KEYFRAME_SECONDS of presentation time.
    A packet is muxed when the next one comes, which tells its duration."""

    def __init__(self, out: Any, stream: Any) -> None:
        self.out = out
        self.stream = stream
        self.last_keyframe: float | None = None
        self.held: Any = None
        self.last_duration = 0

    def frame(self, frame: Any) -> None:
        if frame.pts is None:
            return
        pts, time_base = frame.pts, frame.time_base
        width, height = self.stream.width, self.stream.height
        if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
            # The publisher's encoder changed the picture size (VP8 does under load).
            frame = frame.reformat(width=width, height=height, format="yuv420p")
            frame.pts, frame.time_base = pts, time_base
        at = float(pts * time_base)
        if self.last_keyframe is None or at - self.last_keyframe >= KEYFRAME_SECONDS:
            frame.pict_type = av.video.frame.PictureType.I
            self.last_keyframe = at
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        for packet in self.stream.encode(frame):
            self._take(packet)

    def finish(self) -> None:
        for packet in self.stream.encode(None):
            self._take(packet)
        if self.held is not None:
            self.held.duration = self.last_duration or self.held.duration
            self.out.mux(self.held)
            self.held = None

    def _take(self, packet: Any) -> None:
        if self.held is not None:
            self.last_duration = packet.pts - self.held.pts
            self.held.duration = self.last_duration
            self.out.mux(self.held)
        self.held = packet


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m media.transcode PART OUT.mp4", file=sys.stderr)
        return 2
    keep_out_of_the_way()
    try:
        transcode(Path(args[0]), Path(args[1]))
    except Exception as exc:  # the last line of stderr is what the parent reports
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
