"""Turning a show's recording parts into its replay file, without re-encoding.

The parts (fragmented MP4s written live, media/recorder.py; more than one when the server
restarted during the show) are remuxed in order into one MP4 with its index at the front
("faststart"), so a browser can start playing and seek at once. Each part's timestamps
follow on from the previous part's. A poster image is taken from the first keyframe.

A show may have had video only, audio only, or parts of each (a publisher whose
microphone came back): the replay has a video track if any part had video, an audio
track if any part had audio. A replay without video has no poster, and still plays.
"""

from __future__ import annotations

import fractions
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

POSTER_WIDTH = 720


@dataclass(frozen=True)
class Replay:
    duration: float  # seconds
    size: int  # bytes
    width: int
    height: int
    # Per part that went in: (the part, where it starts in the replay, where it ends).
    segments: tuple[tuple[Path, float, float], ...] = ()
    start: float = 0.0  # for a cut: where it starts in the file it was cut from


def finalize(parts: list[Path], out: Path, poster: Path) -> Replay:
    """Write `out` (MP4) and `poster` (JPEG, when there is video) from the recording
    `parts`, in order."""
    if not parts:
        raise ValueError("nothing was recorded")
    tmp = out.with_suffix(".tmp.mp4")
    offset = 0.0  # seconds: where the next part starts in the replay
    end = 0.0
    width = height = 0
    segments: list[tuple[Path, float, float]] = []
    first_keyframe: tuple[bytes, Path] | None = None
    with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst:
        # The replay's tracks are declared before the first sample: from the first part
        # with video and the first part with audio, whichever parts those are.
        video_out: Any = None
        audio_out: Any = None
        readable: list[Path] = []
        for part in parts:
            try:
                src = av.open(str(part))
            except av.error.FFmpegError:
                continue  # a part cut off before its first fragment: nothing to take
            with src:
                if video_out is None and src.streams.video:
                    template = src.streams.video[0]
                    video_out = dst.add_stream_from_template(template)
                    width, height = template.codec_context.width, template.codec_context.height
                if audio_out is None and src.streams.audio:
                    audio_out = dst.add_stream_from_template(src.streams.audio[0])
                if src.streams.video or src.streams.audio:
                    readable.append(part)
        if video_out is None and audio_out is None:
            raise ValueError("the recording holds no audio or video")
        for part in readable:
            with av.open(str(part)) as src:
                video_in = src.streams.video[0] if src.streams.video else None
                audio_in = src.streams.audio[0] if src.streams.audio else None
                part_end = offset
                wanted = [s for s in (video_in, audio_in) if s is not None]
                for packet in src.demux(*wanted):
                    if packet.dts is None or packet.size == 0:
                        continue
                    is_video = video_in is not None and packet.stream is video_in
                    if is_video and first_keyframe is None and packet.is_keyframe:
                        first_keyframe = (bytes(packet), part)
                    target = video_out if is_video else audio_out
                    if target is None:
                        continue
                    shift = round(offset / packet.time_base)
                    packet.pts = (packet.dts if packet.pts is None else packet.pts) + shift
                    packet.dts += shift
                    duration = packet.duration or 0
                    part_end = max(part_end, float((packet.pts + duration) * packet.time_base))
                    packet.stream = target
                    dst.mux(packet)
                segments.append((part, offset, max(part_end, offset)))
                offset = end = max(part_end, offset)
    tmp.replace(out)
    if first_keyframe is not None:
        _poster(first_keyframe[0], first_keyframe[1], poster)
    else:
        poster.unlink(missing_ok=True)  # no picture: no poster (nor an older one)
    return Replay(round(end, 3), out.stat().st_size, width, height, tuple(segments))


def cut(full: Path, out: Path, poster: Path, start: float, end: float | None) -> Replay:
    """Write `out` (and its poster) as `full` from `start` to `end` seconds, without
    re-encoding: the video starts on the last keyframe at or before `start`, so the cut
    may begin up to one keyframe interval earlier than asked (a replay without video
    starts on its audio). Returns where it began."""
    tmp = out.with_suffix(".tmp.mp4")
    first_keyframe: Any = None
    cut_start: float | None = None
    last = 0.0
    with (
        av.open(str(full)) as src,
        av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as dst,
    ):
        video_in = src.streams.video[0] if src.streams.video else None
        audio_in = src.streams.audio[0] if src.streams.audio else None
        anchor = video_in if video_in is not None else audio_in  # the cut starts on it
        if anchor is None:
            raise ValueError("the replay holds no audio or video")
        video_out = dst.add_stream_from_template(video_in) if video_in is not None else None
        audio_out = dst.add_stream_from_template(audio_in) if audio_in is not None else None
        width = height = 0
        if video_in is not None:
            width, height = video_in.codec_context.width, video_in.codec_context.height
        if start > 0 and anchor.time_base is not None:
            src.seek(int(start / anchor.time_base), stream=anchor, backward=True)
        wanted = [s for s in (video_in, audio_in) if s is not None]
        for packet in src.demux(*wanted):
            if packet.dts is None or packet.size == 0 or packet.time_base is None:
                continue
            pts = packet.dts if packet.pts is None else packet.pts
            at = float(pts * packet.time_base)
            is_video = video_in is not None and packet.stream is video_in
            if cut_start is None:
                if not (packet.stream is anchor and packet.is_keyframe):
                    continue  # audio before the first keyframe, or a frame missing its own
                if anchor is audio_in and at < start:
                    continue  # audio seeks to a packet, not a keyframe interval, before
                cut_start = at
                if is_video:
                    first_keyframe = bytes(packet)
            if at < cut_start:
                continue
            if end is not None and at >= end:
                if packet.stream is anchor:
                    break
                continue
            shift = round(cut_start / packet.time_base)
            packet.pts = pts - shift
            packet.dts -= shift
            last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            target: Any = video_out if is_video else audio_out
            packet.stream = target
            dst.mux(packet)
        if cut_start is None:
            raise ValueError("nothing of the replay is left between those times")
    tmp.replace(out)
    if first_keyframe is not None:
        _poster(first_keyframe, full, poster)
    else:
        poster.unlink(missing_ok=True)
    return Replay(round(last, 3), out.stat().st_size, width, height, start=cut_start)


def _poster(keyframe: bytes, source: Path, poster: Path) -> None:
    """A JPEG of `keyframe` (of the video in `source`), at most POSTER_WIDTH wide."""
    with av.open(str(source)) as src:
        template = src.streams.video[0].codec_context
        decoder: Any = av.CodecContext.create(template.name, "r")
        decoder.extradata = template.extradata
    frames = decoder.decode(av.Packet(keyframe)) or decoder.decode(None)
    if not frames:
        return
    frame = frames[0]
    width = min(POSTER_WIDTH, frame.width) // 2 * 2
    height = round(frame.height * width / frame.width) // 2 * 2
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    tmp = poster.with_suffix(".tmp.jpg")
    with av.open(str(tmp), "w", format="image2") as out:
        stream = out.add_stream("mjpeg", rate=1)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuvj420p"
        stream.time_base = fractions.Fraction(1, 1)
        image.pts = 0
        for packet in stream.encode(image):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(poster)
