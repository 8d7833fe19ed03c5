"""Publishing video only (a phone whose microphone is denied), audio only (an encoder with
no camera) and both, against the real server with real aiortc peers on 127.0.0.1: WHIP
answers 201, a WHEP viewer asking for both gets what the show has (the other section
answered inactive), and the recording and the replay hold exactly the published tracks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack

from media.finalize import cut, finalize
from media.plane import MediaPlane, MediaSettings
from media.recorder import Recorder
from media.transcode import ensure_h264
from tests.conftest import LiveServer
from tests.media_helpers import CounterVideoTrack, answer, make_viewer, read_counter
from tests.test_media_http import Show, ahttp, replay_status, until

pytestmark = pytest.mark.usefixtures("loopback_candidates")

KINDS = {
    "video only": ("video",),
    "audio only": ("audio",),
    "video and audio": ("video", "audio"),
}


@pytest.fixture
def show(live_server: LiveServer) -> Show:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Kinds", "--starts-at", "2030-01-01T10:00")
    )
    return Show(live_server, created["id"], created["stream_key"])


async def publisher(kinds: tuple[str, ...], track: CounterVideoTrack) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    for kind in kinds:
        pc.addTransceiver(track if kind == "video" else AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc


def sections(sdp: str) -> dict[str, str]:
    """The direction of each m-line of an SDP, by kind."""
    found: dict[str, str] = {}
    kind = ""
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split()[0]
        elif kind and line[2:] in ("sendonly", "recvonly", "sendrecv", "inactive"):
            found[kind] = line[2:]
    return found


def tracks_of(path: Path) -> dict[str, float]:
    """Seconds of media per stream type in a recording or replay, as PyAV reads them."""
    with av.open(str(path)) as container:
        seconds = {s.type: 0.0 for s in container.streams}
        for packet in container.demux():
            if packet.size and packet.duration and packet.time_base is not None:
                kind = packet.stream.type
                seconds[kind] += float(packet.duration * packet.time_base)
    return seconds


def decoded_counters(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_counter(f) for f in container.decode(container.streams.video[0])]


def readable(path: Path, kinds: tuple[str, ...], seconds: float) -> bool:
    try:
        found = tracks_of(path)
    except (OSError, av.error.FFmpegError):
        return False  # not written yet
    return set(found) == set(kinds) and all(v >= seconds for v in found.values())


@pytest.mark.parametrize("name", list(KINDS))
async def test_publish_watch_record_and_replay(show: Show, name: str) -> None:
    kinds = KINDS[name]
    track = CounterVideoTrack(320, 180, 30)
    pub = await publisher(kinds, track)
    viewer, viewer_offer, tracks = await make_viewer()  # asks for audio and video
    try:
        reply = await ahttp(
            "POST",
            show.whip,
            pub.localDescription.sdp.encode(),
            {"Content-Type": "application/sdp", "Authorization": f"Bearer {show.key}"},
        )
        assert reply.status == 201, reply.body
        assert set(sections(reply.body)) == set(kinds)
        await answer(pub, reply.body)
        await until(lambda: show.status()["publishing"])
        assert show.status()["status"] == "live"

        reply = await ahttp(
            "POST", show.whep, viewer_offer.encode(), {"Content-Type": "application/sdp"}
        )
        assert reply.status == 201, reply.body
        # The viewer asked for both; what the show lacks is answered inactive.
        assert sections(reply.body) == {
            kind: "sendonly" if kind in kinds else "inactive" for kind in ("audio", "video")
        }
        await answer(viewer, reply.body)
        await until(lambda: {t.kind for t in tracks} == set(kinds))
        for received in tracks:
            got = [await asyncio.wait_for(received.recv(), 10) for _ in range(30)]
            if received.kind == "video":
                counters = [read_counter(f) for f in got]
                assert counters == sorted(counters) and counters[-1] > 0, counters
                assert {(f.width, f.height) for f in got} == {(320, 180)}
            else:
                assert all(f.sample_rate == 48000 and f.samples for f in got)

        # Recorded as it goes, with the published tracks only.
        part = show.server.data_dir / "recordings" / f"show-{show.id}" / "part-001.mp4"
        await until(lambda: readable(part, kinds, 2.0), 15)
    finally:
        await viewer.close()
        await pub.close()
    # The publisher went away: after the grace period (3 s in tests) the show ends, and
    # its replay is made from the recording.
    await until(lambda: show.status()["status"] == "ended", 15)
    await until(lambda: replay_status(show) == "ready", 30)
    replay = show.server.data_dir / "replays" / f"show-{show.id}.mp4"
    found = await asyncio.to_thread(tracks_of, replay)
    assert set(found) == set(kinds), found
    assert all(seconds >= 2.0 for seconds in found.values()), found
    if "video" in kinds:
        counters = await asyncio.to_thread(decoded_counters, replay)
        assert counters == sorted(counters) and len(counters) >= 60
    # It plays from the site; a poster comes from the video, and there is none without.
    page = (await ahttp("GET", f"{show.server.url}/shows/{show.id}")).body
    assert f'src="/replays/{show.id}.mp4"' in page
    poster = await ahttp("GET", f"{show.server.url}/replays/{show.id}.jpg")
    assert poster.status == (200 if "video" in kinds else 404)


# -- the recording and replay of each kind, in-process -----------------------------------


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[MediaPlane]:
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=tmp_path))
    await plane.start()
    yield plane
    await plane.close()


async def publish(
    plane: MediaPlane, kinds: tuple[str, ...], first: int = 0, codec: str | None = None
) -> RTCPeerConnection:
    pc = RTCPeerConnection()
    for kind in kinds:
        track = CounterVideoTrack(320, 180, 30, first=first) if kind == "video" else None
        transceiver = pc.addTransceiver(track or AudioStreamTrack(), direction="sendonly")
        if kind == "video" and codec is not None:
            caps = RTCRtpSender.getCapabilities("video").codecs
            wanted = (codec.lower(), "video/rtx")
            transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() in wanted])
    await pc.setLocalDescription(await pc.createOffer())
    _session, sdp = await plane.publish("7", pc.localDescription.sdp.encode())
    await answer(pc, sdp)
    return pc


async def recorded(plane: MediaPlane, video: int = 0, audio: int = 0) -> Recorder:
    """The show's recorder, once it has recorded `video` more frames and `audio` more
    packets than when called."""
    recorder = plane.recording("7")
    assert recorder is not None
    video += recorder.video_frames
    audio += recorder.audio_packets
    deadline = time.monotonic() + 15
    while recorder.video_frames < video or recorder.audio_packets < audio:
        assert time.monotonic() < deadline, (recorder.video_frames, recorder.audio_packets)
        await asyncio.sleep(0.1)
    return recorder


async def test_vp8_video_only_is_recorded_and_becomes_an_h264_replay(
    plane: MediaPlane, tmp_path: Path
) -> None:
    pc = await publish(plane, ("video",), codec="video/VP8")
    recorder = await recorded(plane, video=60)
    await plane.end_show("7")
    await pc.close()
    assert recorder.error is None and recorder.audio_packets == 0
    [part] = recorder.parts
    assert part.suffix == ".mkv" and set(tracks_of(part)) == {"video"}
    h264 = await ensure_h264(recorder.parts)
    replay, poster = tmp_path / "replay.mp4", tmp_path / "poster.jpg"
    made = await asyncio.to_thread(finalize, h264, replay, poster)
    assert set(tracks_of(replay)) == {"video"} and (made.width, made.height) == (320, 180)
    counters = decoded_counters(replay)
    assert counters == sorted(counters) and len(counters) >= 55
    assert poster.stat().st_size > 0


async def test_publishers_with_other_tracks_make_new_parts_and_one_replay(
    plane: MediaPlane, tmp_path: Path
) -> None:
    """Video only (microphone denied), then video and audio (allowed after all), then
    audio only (the camera turned off): three parts, each with what was sent; the replay
    has both tracks and every part's video in order; trimmed, it keeps what it should."""
    steps = ((("video",), 0), (("video", "audio"), 10_000), (("audio",), 20_000))
    for kinds, first in steps:
        pc = await publish(plane, kinds, first=first)
        await recorded(
            plane, video=60 if "video" in kinds else 0, audio=100 if "audio" in kinds else 0
        )
        await pc.close()
    recorder = plane.recording("7")
    assert recorder is not None
    await plane.end_show("7")
    assert recorder.error is None
    assert [p.name for p in recorder.parts] == ["part-001.mp4", "part-002.mp4", "part-003.mp4"]
    found = [set(tracks_of(p)) for p in recorder.parts]
    assert found == [{"video"}, {"video", "audio"}, {"audio"}]

    replay, poster = tmp_path / "replay.mp4", tmp_path / "poster.jpg"
    made = await asyncio.to_thread(finalize, recorder.parts, replay, poster)
    seconds = tracks_of(replay)
    assert set(seconds) == {"video", "audio"} and seconds["audio"] >= 3.0
    counters = decoded_counters(replay)
    assert counters == sorted(counters) and {c // 10_000 for c in counters} == {0, 1}
    assert [segment[0] for segment in made.segments] == recorder.parts
    assert abs(made.duration - made.segments[-1][2]) < 0.01
    assert poster.exists()


async def test_an_audio_only_show_makes_a_replay_without_poster_that_can_be_trimmed(
    plane: MediaPlane, tmp_path: Path
) -> None:
    pc = await publish(plane, ("audio",))
    recorder = await recorded(plane, audio=200)  # 4 s
    await plane.end_show("7")
    await pc.close()
    assert recorder.error is None and recorder.video_frames == 0
    [part] = recorder.parts
    assert set(tracks_of(part)) == {"audio"}
    replay, poster = tmp_path / "replay.mp4", tmp_path / "poster.jpg"
    poster.write_bytes(b"an older poster")
    made = await asyncio.to_thread(finalize, recorder.parts, replay, poster)
    assert set(tracks_of(replay)) == {"audio"} and made.duration >= 3.5
    assert (made.width, made.height) == (0, 0) and not poster.exists()

    trimmed = tmp_path / "trimmed.mp4"
    cut_made = await asyncio.to_thread(cut, replay, trimmed, poster, 1.0, 3.0)
    seconds = tracks_of(trimmed)
    assert set(seconds) == {"audio"} and abs(seconds["audio"] - 2.0) < 0.1, seconds
    assert abs(cut_made.start - 1.0) < 0.05 and not poster.exists()
