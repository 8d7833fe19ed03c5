"""The replay of a show with a guest: media/compose.py draws host and guest together as
the stage said, over time, in a child process."""

from __future__ import annotations

import asyncio
import json
import math
from array import array
from fractions import Fraction
from pathlib import Path

import av

from media.compose import Spec, StageAt, as_frame, compose, compose_in_child, wall_of

RED = (81, 90, 240)  # Y, U, V of pure red (BT.601, limited range)
BLUE = (41, 240, 110)


def coloured(
    path: Path,
    yuv: tuple[int, int, int],
    width: int,
    height: int,
    seconds: float,
    audio: bool = False,
    tone: bool = False,
) -> None:
    """An H264 MP4 of one colour at 15 frames a second (and, with `audio`, silence or with
    `tone` a 440 Hz tone)."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=15)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "bf": "0"}
        sound = out.add_stream("aac", rate=48000) if audio else None
        size = width * height
        data = (
            bytes([yuv[0]]) * size,
            bytes([yuv[1]]) * (size // 4),
            bytes([yuv[2]]) * (size // 4),
        )
        for n in range(int(seconds * 15)):
            frame = as_frame(data, width, height)
            frame.pts, frame.time_base = n, Fraction(1, 15)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if sound is not None:
            for n in range(int(seconds * 48000 / 1024)):
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                wave = array(
                    "f",
                    (
                        0.3 * math.sin(2 * math.pi * 440 * (n * 1024 + i) / 48000) if tone else 0.0
                        for i in range(1024)
                    ),
                )
                for plane in chunk.planes:
                    plane.update(wave.tobytes() + bytes(plane.buffer_size - 4096))
                chunk.sample_rate, chunk.pts = 48000, n * 1024
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))


def colour_at(frame: av.VideoFrame, x: int, y: int) -> tuple[int, int, int]:
    """(Y, U, V) of the pixel at (x, y)."""
    planes = frame.reformat(format="yuv420p").planes
    luma = bytes(planes[0])[y * planes[0].line_size + x]
    u = bytes(planes[1])[(y // 2) * planes[1].line_size + x // 2]
    v = bytes(planes[2])[(y // 2) * planes[2].line_size + x // 2]
    return luma, u, v


def near(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    return all(abs(p - q) <= 12 for p, q in zip(a, b, strict=True))


def frames_at(path: Path, times: list[float]) -> dict[float, av.VideoFrame]:
    """The first decoded frame at or after each of `times` (seconds)."""
    found: dict[float, av.VideoFrame] = {}
    with av.open(str(path)) as source:
        for frame in source.decode(video=0):
            t = float(frame.pts * frame.time_base)
            for want in times:
                if want not in found and t >= want:
                    found[want] = frame
    return found


def test_pure_parts() -> None:
    stage = StageAt([[10.0, True, "side"], [20.0, True, "inset"], [30.0, False, "inset"]])
    assert stage.at(5) == (False, "side")
    assert stage.at(10) == (True, "side")
    assert stage.at(25) == (True, "inset")
    assert stage.at(31) == (False, "inset")
    timeline = [[100.0, 0.0, 10.0], [200.0, 10.0, 20.0]]
    assert wall_of(timeline, 5.0) == 105.0
    assert wall_of(timeline, 12.0) == 202.0


def test_composed_replay_follows_the_stage(tmp_path: Path) -> None:
    main, guest = tmp_path / "main.mp4", tmp_path / "guest.mp4"
    coloured(main, RED, 640, 360, 8.0, audio=True)
    coloured(guest, BLUE, 240, 320, 5.0, audio=True, tone=True)  # a phone held upright
    started = 1000.0
    spec = Spec(
        main=str(main),
        timeline=[[started, 0.0, 8.0]],
        guest_parts=[[str(guest), started + 1.0]],  # the guest joins a second in
        stage=[
            [started + 1.0, True, "side"],
            [started + 3.5, True, "inset"],
            [started + 6.0, False, "inset"],
        ],
        out=str(tmp_path / "out.mp4"),
    )
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.__dict__))
    asyncio.run(compose_in_child(spec_path))  # as the server runs it: a child process
    out = tmp_path / "out.mp4"
    with av.open(str(out)) as result:
        assert result.streams.video[0].codec_context.name == "h264"
        assert (result.streams.video[0].width, result.streams.video[0].height) == (640, 360)
        assert result.streams.audio, "the host's sound is kept"
    frames = frames_at(out, [0.5, 2.0, 5.0, 7.0])
    # Before the guest: the host alone.
    assert near(colour_at(frames[0.5], 480, 180), RED)
    # Side by side: the host on the left, the guest on the right (upright, so black bars).
    side = frames[2.0]
    assert near(colour_at(side, 160, 180), RED)
    assert near(colour_at(side, 480, 180), BLUE)
    assert colour_at(side, 340, 180)[0] < 30  # the bar beside the upright guest
    # Inset: the host everywhere but the bottom right corner.
    inset = frames[5.0]
    assert near(colour_at(inset, 160, 180), RED)
    assert near(colour_at(inset, 480, 180), RED)
    assert near(colour_at(inset, 640 - 19 - 106, 360 - 10 - 60), BLUE)
    # The guest left the stage.
    assert near(colour_at(frames[7.0], 540, 300), RED)
    # The sound: the host's silence, with the guest's tone while the guest was on.
    loud = loudness(out)
    assert loud[0] < 0.01 and loud[7] < 0.01, loud
    assert all(loud[t] > 0.1 for t in (2, 3, 4, 5)), loud


def loudness(path: Path) -> list[float]:
    """The sound's RMS level, second by second."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
    samples = array("f")
    with av.open(str(path)) as source:
        for frame in source.decode(audio=0):
            for out in resampler.resample(frame):
                samples.frombytes(bytes(out.planes[0])[: out.samples * 4])
    seconds = len(samples) // 48000
    return [
        math.sqrt(sum(x * x for x in samples[s * 48000 : (s + 1) * 48000]) / 48000)
        for s in range(seconds)
    ]


def test_a_failing_composition_says_why(tmp_path: Path) -> None:
    spec = Spec(str(tmp_path / "missing.mp4"), [], [], [], str(tmp_path / "out.mp4"))
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec.__dict__))
    try:
        asyncio.run(compose_in_child(spec_path))
    except RuntimeError as exc:
        assert "missing.mp4" in str(exc) or "No such file" in str(exc)
    else:
        raise AssertionError("a missing replay composed")
    assert compose is not None
