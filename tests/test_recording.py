"""Recording a show as it goes (media/recorder.py), with real aiortc publishers on
127.0.0.1: the file holds the video as sent (remuxed) and AAC audio, a publisher
reconnect continues the same file, and the file is readable while still being written."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, read_back


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[MediaPlane]:
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=tmp_path))
    await plane.start()
    yield plane
    await plane.close()
    glue.set_host_addresses([])


async def publish(
    plane: MediaPlane, first: int, codec: str | None = None
) -> tuple[object, CounterVideoTrack]:
    track = CounterVideoTrack(width=320, height=180, fps=30, first=first)
    pc, offer = await make_publisher(track, codec=codec)
    _session, sdp = await plane.publish("7", offer.encode())
    await answer(pc, sdp)
    return pc, track


async def frames_recorded(recorder: object, n: int, limit: float = 15.0) -> None:
    deadline = time.monotonic() + limit
    while getattr(recorder, "video_frames", 0) < n:
        assert time.monotonic() < deadline, f"fewer than {n} frames recorded"
        await asyncio.sleep(0.1)


def parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("show-7/part-*") if p.suffix in (".mp4", ".mkv"))


async def test_a_show_is_recorded_across_a_publisher_reconnect(
    plane: MediaPlane, tmp_path: Path
) -> None:
    started = time.monotonic()
    first_pc, _ = await publish(plane, first=0)
    await asyncio.sleep(6)
    recorder = plane.recording("7")
    assert recorder is not None and recorder.video_frames > 60
    path = recorder.path
    # Readable while the show goes on: fragments are complete on disk as written.
    partial, _, _, _ = read_back(path)
    assert len(partial) > 60

    await first_pc.close()  # the phone drops, and comes back with a new connection
    await asyncio.sleep(1)
    frames_before = recorder.video_frames
    second_pc, _ = await publish(plane, first=10_000)
    deadline = time.monotonic() + 10
    while recorder.video_frames < frames_before + 30:
        assert time.monotonic() < deadline, "the second publisher's video was not recorded"
        await asyncio.sleep(0.1)
    await asyncio.sleep(3)
    elapsed = time.monotonic() - started
    await plane.end_show("7")
    await second_pc.close()

    assert recorder.error is None
    assert parts(tmp_path) == [path]  # one file for the show
    counters, times, audio_seconds, codecs = read_back(path)
    assert codecs == {"video": "h264", "audio": "aac"}
    assert times == sorted(times) and len(set(times)) == len(times)  # monotonic
    before = [c for c in counters if c < 10_000]
    after = [c for c in counters if c >= 10_000]
    assert before and after and counters.index(after[0]) == len(before)  # in order
    assert before[0] < 30 and before == sorted(before)
    assert after == sorted(after)
    # The file's time follows the wall clock, gap included.
    assert abs(times[-1] - elapsed) < 2.0, (times[-1], elapsed)
    assert audio_seconds > elapsed - 3.0


KILLED = """
import asyncio, sys
from pathlib import Path
from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings
from tests.media_helpers import CounterVideoTrack, answer, make_publisher

async def main():
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=Path(sys.argv[1])))
    await plane.start()
    pc, offer = await make_publisher(CounterVideoTrack(width=320, height=180), codec=sys.argv[2])
    _, sdp = await plane.publish("7", offer.encode())
    await answer(pc, sdp)
    while (rec := plane.recording("7")) is None or rec.video_frames < 150:
        await asyncio.sleep(0.1)
    print("recording", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.parametrize("codec", ["video/H264", "video/VP8"])
def test_a_killed_process_leaves_a_playable_recording(tmp_path: Path, codec: str) -> None:
    """SIGKILL in the middle of a show: what was recorded up to the last second plays,
    from the fragmented MP4 (H264) as from the Matroska file (VP8)."""
    import os
    import signal
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path), codec],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # after 150 recorded frames (5 s)
        assert line.strip() == "recording"
        time.sleep(1.0)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    [path] = parts(tmp_path)
    assert path.suffix == {"video/H264": ".mp4", "video/VP8": ".mkv"}[codec]
    counters, times, _, codecs = read_back(path)
    assert codecs == {"video": codec.split("/")[1].lower(), "audio": "aac"}
    assert times[-1] >= 4.0, times[-1]  # about 6 s sent, at most about a second lost
    assert counters == sorted(counters) and counters[0] < 30


async def test_parts_from_a_restart_make_one_replay(tmp_path: Path) -> None:
    """Two processes in a row recorded the same show (a restart): the replay plays both
    parts in order, timestamps continuing, with a poster."""
    from media.finalize import finalize

    for first in (0, 10_000):
        plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=tmp_path))
        await plane.start()
        try:
            pc, _ = await publish(plane, first=first)
            recorder = plane.recording("7")
            assert recorder is not None
            await frames_recorded(recorder, 60)
            await plane.end_show("7")
            await pc.close()
        finally:
            await plane.close()
    found = parts(tmp_path)
    assert [p.name for p in found] == ["part-001.mp4", "part-002.mp4"]
    first_part = read_back(found[0])[1][-1]
    made = await asyncio.to_thread(
        finalize, found, tmp_path / "replay.mp4", tmp_path / "poster.jpg"
    )
    counters, times, audio_seconds, codecs = read_back(tmp_path / "replay.mp4")
    assert codecs == {"video": "h264", "audio": "aac"} and audio_seconds > 2.0
    assert times == sorted(times) and len(set(times)) == len(times)
    assert counters == sorted(counters) and counters[0] < 30 and counters[-1] >= 10_000
    assert times[counters.index(next(c for c in counters if c >= 10_000))] > first_part
    assert abs(made.duration - times[-1]) < 0.5 and (made.width, made.height) == (320, 180)
    with av.open(str(tmp_path / "poster.jpg")) as poster:
        assert poster.streams.video[0].codec_context.width == 320


async def test_a_codec_change_starts_a_new_part(plane: MediaPlane, tmp_path: Path) -> None:
    """Publishers with H264, then VP8 (another browser), then H264 again: each codec
    change closes the part and starts the next, numbered on; nothing of the show is
    lost, and the replay (VP8 turned into H264) plays the three in order."""
    from media.finalize import finalize
    from media.transcode import ensure_h264

    for first, codec in ((0, "video/H264"), (10_000, "video/VP8"), (20_000, "video/H264")):
        recorder = plane.recording("7")
        before = recorder.video_frames if recorder is not None else 0
        pc, _ = await publish(plane, first=first, codec=codec)
        recorder = plane.recording("7")
        assert recorder is not None
        await frames_recorded(recorder, before + 60)
        await pc.close()
    await plane.end_show("7")

    assert recorder.error is None
    names = ["part-001.mp4", "part-002.mkv", "part-003.mp4"]
    assert [p.name for p in recorder.parts] == names
    assert parts(tmp_path) == recorder.parts
    starts = [json.loads(p.with_suffix(".json").read_text())["started_at"] for p in parts(tmp_path)]
    assert starts == sorted(starts)
    for path, first in zip(recorder.parts, (0, 10_000, 20_000), strict=True):
        counters, times, _, _ = read_back(path)
        assert counters[0] - first < 30 and counters == sorted(counters), path
        assert times[0] == 0.0  # every part starts at its first keyframe
    # Each part's time 0 is when its first frame came: the wall clock its json says.
    assert starts[1] - starts[0] >= read_back(recorder.parts[0])[1][-1]

    h264 = await ensure_h264(recorder.parts)
    assert [p.name for p in h264] == ["part-001.mp4", "part-002.mp4", "part-003.mp4"]
    await asyncio.to_thread(finalize, h264, tmp_path / "replay.mp4", tmp_path / "poster.jpg")
    counters, times, _, codecs = read_back(tmp_path / "replay.mp4")
    assert codecs == {"video": "h264", "audio": "aac"}
    assert times == sorted(times) and len(set(times)) == len(times)
    assert counters == sorted(counters)
    assert {c // 10_000 for c in counters} == {0, 1, 2}
