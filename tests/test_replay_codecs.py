"""A replay that plays on every phone whatever the publisher sent: H264 is kept as sent,
VP8 is recorded as sent (Matroska) and turned into H264 when the show ends
(media/transcode.py). End to end over WHIP against the real server, and the transcode
on its own."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest

from media import transcode
from tests.conftest import ROOT, LiveServer
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, read_counter
from tests.test_media_http import Show, ahttp, replay_status, until

FPS = 30
SECONDS = 20


pytestmark = pytest.mark.usefixtures("loopback_candidates")


@pytest.fixture
def show(live_server: LiveServer) -> Show:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Codecs", "--starts-at", "2030-01-01T10:00")
    )
    return Show(live_server, created["id"], created["stream_key"])


def read_replay(path: Path) -> dict:
    """What a player would find in the replay: codecs, duration, counters, timestamps."""
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        found = {
            "codecs": {s.type: s.codec_context.name for s in container.streams},
            "duration": container.duration / av.time_base,
        }
        counters, video_times = [], []
        for frame in container.decode(video):
            counters.append(read_counter(frame))
            video_times.append(frame.pts)
        container.seek(0)
        audio_times = [p.pts for p in container.demux(audio) if p.size]
    return {
        **found,
        "counters": counters,
        "video_times": video_times,
        "audio_times": audio_times,
    }


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
async def test_a_20_second_show_makes_a_replay_that_plays_everywhere(
    show: Show, codec: str
) -> None:
    track = CounterVideoTrack(320, 180, FPS)
    pc, offer = await make_publisher(track, codec=codec)  # and the silence of aiortc's audio
    try:
        reply = await ahttp(
            "POST",
            show.whip,
            offer.encode(),
            {"Content-Type": "application/sdp", "Authorization": f"Bearer {show.key}"},
        )
        assert reply.status == 201, reply.body
        assert f"{codec.split('/')[1]}/90000" in reply.body
        await answer(pc, reply.body)
        await until(lambda: track.count >= SECONDS * FPS, SECONDS + 10)  # paced at FPS
    finally:
        await pc.close()  # the phone goes away
    sent = track.count  # frames 0 .. sent - 1 were made, over sent / FPS seconds
    # The show ends after the grace period (3 s in tests), then its replay is made.
    await until(lambda: show.status()["status"] == "ended", 15)
    await until(lambda: replay_status(show) == "ready", 30)
    replay = show.server.data_dir / "replays" / f"show-{show.id}.mp4"
    found = await asyncio.to_thread(read_replay, replay)

    assert found["codecs"] == {"video": "h264", "audio": "aac"}
    assert abs(found["duration"] - sent / FPS) <= 0.5, (found["duration"], sent / FPS)
    video_times, audio_times = found["video_times"], found["audio_times"]
    assert all(a < b for a, b in itertools.pairwise(video_times))
    assert all(a < b for a, b in itertools.pairwise(audio_times))
    counters = found["counters"]
    assert counters == sorted(counters)
    # The recording starts on the first keyframe the server gets: the encoder's first
    # frame, unless it was lost on the way (then a later one, allowed up to 1 s).
    assert counters[0] < FPS, counters[:5]
    # The last frames sent may still have been in the encoder, the pacer or the socket
    # when the session was deleted: up to a second of them may be missing, no more.
    assert sent - 1 - FPS <= counters[-1] <= sent - 1, (counters[-1], sent)
    # Nothing in between is missing: the frames are the ones sent, in order.
    assert len(counters) >= (counters[-1] - counters[0] + 1) * 0.98, len(counters)


# -- the transcode on its own ----------------------------------------------------------


def write_vp8_part(path: Path, frames: int = 90, sizes: tuple = ((320, 180),)) -> None:
    """A recording part as the recorder writes it for VP8: Matroska, VP8 and AAC, with a
    frame counter; `sizes` splits the frames between pictures of different sizes, as a
    browser's encoder does when it scales down under load."""
    with av.open(str(path), "w", format="matroska") as out:
        video = out.add_stream("libvpx", rate=FPS)
        video.width, video.height = sizes[0]
        video.time_base = fractions.Fraction(1, 90000)
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        silence = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        silence.sample_rate = 48000
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        per_size = frames // len(sizes)
        samples = 0
        for n in range(frames):
            width, height = sizes[min(n // per_size, len(sizes) - 1)]
            if n % per_size == 0:
                encoder = av.CodecContext.create("libvpx", "w")
                encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
                encoder.time_base = fractions.Fraction(1, FPS)
                encoder.options = {"deadline": "realtime", "cpu-used": "8"}
            picture = CounterVideoTrack(width, height, FPS)
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.planes[0].update(picture._luma(n))
            frame.planes[1].update(picture._uv)
            frame.planes[2].update(picture._uv)
            frame.pts = n
            packets = encoder.encode(frame)
            if (n + 1) % per_size == 0:
                packets += encoder.encode(None)  # this size ends here
            for packet in packets:
                packet.stream = video
                packet.time_base = fractions.Fraction(1, 90000)
                packet.pts = packet.dts = round(packet.pts * 90000 / FPS)
                out.mux(packet)
            while samples < (n + 1) * 48000 // FPS:
                silence.pts = samples
                for packet in audio.encode(silence):
                    out.mux(packet)
                samples += 1024
        for packet in audio.encode(None):
            out.mux(packet)
    path.with_suffix(".json").write_text(json.dumps({"started_at": 1234.5}))


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        packets = [p for p in container.demux() if p.size]
        times = [float(p.pts * p.time_base) for p in packets if p.stream.type == "video"]
        audio = [p for p in packets if p.stream.type == "audio"]
        container.seek(0)
        counters = [read_counter(f) for f in container.decode(video)]
        return {
            "codec": video.codec_context.name,
            "size": (video.codec_context.width, video.codec_context.height),
            "times": times,
            "audio": (len(audio), float(audio[-1].pts * audio[-1].time_base)),
            "audio_codec": container.streams.audio[0].codec_context.name,
            "counters": counters,
        }


async def test_the_transcode_keeps_every_frame_and_time(tmp_path: Path) -> None:
    h264 = tmp_path / "part-001.mp4"
    vp8 = tmp_path / "part-002.mkv"
    await asyncio.to_thread(write_vp8_part, vp8, 90, ((320, 180), (256, 144)))
    h264.write_bytes(b"")  # not readable: passed on untouched, finalize skips it

    made = await transcode.ensure_h264([h264, vp8])

    assert made == [h264, tmp_path / "h264" / "part-002.mp4"]
    before, after = stream_facts(vp8), stream_facts(made[1])
    assert after["codec"] == "h264" and after["size"] == (320, 180)
    assert len(after["times"]) == len(before["times"]) == 90
    # Matroska keeps milliseconds: every frame where it was, within one.
    assert max(abs(a - b) for a, b in zip(after["times"], before["times"], strict=True)) < 0.001
    assert after["counters"] == before["counters"] == list(range(90))
    assert after["audio_codec"] == "aac"
    assert after["audio"][0] == before["audio"][0]  # copied, packet for packet
    assert abs(after["audio"][1] - before["audio"][1]) < 0.001
    assert json.loads((made[1].with_suffix(".json")).read_text()) == {"started_at": 1234.5}
    assert sorted(p.name for p in made[1].parent.iterdir()) == ["part-002.json", "part-002.mp4"]
    # Made once: a second run (the replay made again after a restart) reuses it.
    stamp = made[1].stat().st_mtime_ns
    assert await transcode.ensure_h264([vp8]) == [made[1]]
    assert made[1].stat().st_mtime_ns == stamp


async def test_a_failed_transcode_says_which_part_and_why(tmp_path: Path) -> None:
    vp8 = tmp_path / "part-001.mkv"
    await asyncio.to_thread(write_vp8_part, vp8, 15)
    (tmp_path / "h264").write_text("in the way")  # the folder cannot be made
    with pytest.raises(transcode.TranscodeError, match=r"part-001\.mkv .*FileExistsError"):
        await transcode.ensure_h264([vp8])


async def test_cancelling_stops_the_transcode(tmp_path: Path) -> None:
    vp8 = tmp_path / "part-001.mkv"
    await asyncio.to_thread(write_vp8_part, vp8, 600)  # 20 s: several seconds of work
    task = asyncio.create_task(transcode.ensure_h264([vp8]))
    folder = tmp_path / "h264"
    deadline = time.monotonic() + 10
    while not (children_transcoding(vp8) and folder.exists() and list(folder.iterdir())):
        assert time.monotonic() < deadline, "the transcode did not start writing"
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not children_transcoding(vp8)
    assert list(folder.iterdir()) == []  # no half-written file left


def children_transcoding(part: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"media.transcode" in argv and str(part).encode() in argv:
            found.append(int(proc.name))
    return found


def test_the_transcoding_process_keeps_out_of_the_way() -> None:
    probe = (
        "import os; from media.transcode import keep_out_of_the_way; keep_out_of_the_way(); "
        "print(os.nice(0), sorted(os.sched_getaffinity(0)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(maxsplit=1)
    assert int(out[0]) == 19
    assert json.loads(out[1]) == [max(os.sched_getaffinity(0))]
