"""The low-latency HLS rendition (media/hls.py): written from a real WHIP publisher's
packets by the recording thread, without re-encoding the video, with AAC from the
recording's one transcode; parts, segments, a discontinuity for a new publisher, and a
window of recent segments that goes with the show."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator

import av
import pytest

from media import aiortc_glue as glue
from media.hls import Rendition
from media.plane import MediaPlane, MediaSettings, TooManyViewers
from tests.media_helpers import (
    CounterVideoTrack,
    answer,
    make_publisher,
    make_viewer,
    read_counter,
)

PART_RE = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="\w+/p(\d+)\.m4s"(,INDEPENDENT=YES)?')


@pytest.fixture
async def plane() -> AsyncIterator[MediaPlane]:
    # Not recorded to disk: the recording's thread still runs, for the rendition alone.
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], hls=True))
    await plane.start()
    yield plane
    await plane.close()
    glue.set_host_addresses([])


async def publish(plane: MediaPlane, first: int) -> tuple[object, CounterVideoTrack]:
    track = CounterVideoTrack(width=320, height=180, fps=30, first=first)
    pc, offer = await make_publisher(track, codec="video/H264")
    _session, sdp = await plane.publish("5", offer.encode())
    await answer(pc, sdp)
    return pc, track


async def parts_written(rendition: Rendition, n: int, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while rendition.next_part < n:
        assert time.monotonic() < deadline, f"fewer than {n} parts written"
        await asyncio.sleep(0.1)


def decode(init: bytes, media: list[bytes]) -> tuple[list[int], tuple[int, int], dict[str, str]]:
    """What a player decodes from an init segment and the parts after it: the counters,
    the picture size and the codec of each stream."""
    with av.open(io.BytesIO(init + b"".join(media))) as container:
        codecs = {s.type: s.codec_context.name for s in container.streams}
        counters, size = [], (0, 0)
        for frame in container.decode(container.streams.video[0]):
            counters.append(read_counter(frame))
            size = (frame.width, frame.height)
    return counters, size, codecs


async def test_parts_and_segments_carry_the_publishers_frames_as_sent(plane: MediaPlane) -> None:
    pc, _track = await publish(plane, first=0)
    rendition = plane.rendition("5")
    assert rendition is not None
    await parts_written(rendition, 20)
    playlist = rendition.playlist()
    assert playlist is not None
    assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=" in playlist
    assert "#EXT-X-PART-INF:PART-TARGET=0.500" in playlist
    assert "#EXT-X-PROGRAM-DATE-TIME:" in playlist
    hint = f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{rendition.epoch}/p{rendition.next_part}.m4s"'
    assert hint in playlist
    parts = [(float(d), int(n), bool(i)) for d, n, i in PART_RE.findall(playlist)]
    assert parts and all(0 < d <= 0.5 for d, _, _ in parts)
    assert [n for _, n, _ in parts] == list(range(parts[0][1], parts[-1][1] + 1))
    segments = re.findall(r"#EXTINF:([0-9.]+),\n\w+/s(\d+)\.m4s", playlist)
    assert segments, playlist
    # Segments of about 1-2 s, each starting on a keyframe the writer asked for.
    assert all(0.9 <= float(d) <= 2.5 for d, _ in segments[1:]), segments

    init = rendition.init(0)
    assert init is not None
    first_msn = int(segments[0][1])
    media = [rendition.segment(first_msn)]
    start = first_msn
    # The parts after the complete segments follow on.
    for msn in range(start + 1, rendition.last_msn() + 1):
        whole = rendition.segment(msn)
        if whole is not None:
            media.append(whole)
    assert all(m is not None for m in media)
    counters, size, codecs = decode(init, [m for m in media if m is not None])
    await pc.close()  # type: ignore[attr-defined]

    assert codecs == {"video": "h264", "audio": "aac"}
    assert size == (320, 180)  # the publisher's own size: no re-encoding
    assert len(counters) > 20
    assert counters == sorted(counters)
    assert counters[-1] - counters[0] + 1 - len(counters) <= 2  # nothing lost in between


async def test_a_new_publisher_continues_the_rendition_after_a_discontinuity(
    plane: MediaPlane,
) -> None:
    first_pc, _ = await publish(plane, first=0)
    rendition = plane.rendition("5")
    assert rendition is not None
    await parts_written(rendition, 10)
    await first_pc.close()  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    before = rendition.next_part
    second_pc, _ = await publish(plane, first=20_000)
    await parts_written(rendition, before + 10)
    assert plane.rendition("5") is rendition  # the same URL goes on
    playlist = rendition.playlist()
    assert playlist is not None
    assert "#EXT-X-DISCONTINUITY\n" in playlist
    assert f'#EXT-X-MAP:URI="{rendition.epoch}/init-1.mp4"' in playlist
    new = [s for s in rendition.segments if s.period == 1]
    init = rendition.init(1)
    assert init is not None and new
    counters, _, _ = decode(init, [p.data for s in new for p in s.parts])
    assert counters and min(counters) >= 20_000

    await plane.end_show("5")
    await second_pc.close()  # type: ignore[attr-defined]
    assert plane.rendition("5") is None
    assert rendition.playlist() is None and not rendition.segments  # removed with the show


async def test_blocking_reload_waits_for_the_part(plane: MediaPlane) -> None:
    pc, _ = await publish(plane, first=0)
    rendition = plane.rendition("5")
    assert rendition is not None
    await parts_written(rendition, 3)
    msn = rendition.last_msn()
    segment = rendition.segments[-1]
    wanted = len(segment.parts)  # the next part of the newest segment
    assert not rendition.has(msn, wanted)
    started = time.monotonic()
    assert await rendition.wait(lambda: rendition.has(msn, wanted), 5.0)
    assert 0 < time.monotonic() - started < 1.0
    # A part far ahead is not there at the end of the wait.
    assert not await rendition.wait(lambda: rendition.has(msn + 50, 0), 0.3)
    await pc.close()  # type: ignore[attr-defined]


async def test_past_max_viewers_only_reserved_sessions_get_webrtc() -> None:
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], max_viewers=1))
    await plane.start()
    pcs = []
    try:
        pc, _ = await publish(plane, first=0)
        pcs.append(pc)
        viewer, offer, _tracks = await make_viewer()
        pcs.append(viewer)
        _session, sdp = await plane.watch("5", offer.encode(), "a")
        await answer(viewer, sdp)
        deadline = time.monotonic() + 15
        while plane.viewer_count("5") < 1:
            assert time.monotonic() < deadline, "the first viewer never connected"
            await asyncio.sleep(0.1)

        second, offer2, _ = await make_viewer()
        pcs.append(second)
        with pytest.raises(TooManyViewers):  # the page falls back to HLS on this 503
            await plane.watch("5", offer2.encode(), "b")
        # The show's staff are let in all the same, and stay connected.
        _session, sdp = await plane.watch("5", offer2.encode(), "staff", reserved=True)
        await answer(second, sdp)
        deadline = time.monotonic() + 15
        while plane.viewer_count("5") < 2:
            assert time.monotonic() < deadline, "the staff viewer was not let in"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        assert plane.viewer_count("5") == 2
    finally:
        for pc in pcs:
            await pc.close()  # type: ignore[attr-defined]
        await plane.close()
        glue.set_host_addresses([])


async def test_hls_viewers_are_those_who_asked_lately(plane: MediaPlane) -> None:
    pc, _ = await publish(plane, first=0)
    rendition = plane.rendition("5")
    assert rendition is not None
    now = time.monotonic()
    rendition.note_client("v_one", now - 30)  # gone quiet
    rendition.note_client("v_two", now - 2)
    rendition.note_client("198.51.100.7", now)
    rendition.note_client("v_two", now)  # asks again: one viewer still
    assert plane.stats("5")["hls_viewers"] == 2
    await pc.close()  # type: ignore[attr-defined]
