"""Publishing video only (a phone whose microphone is denied), audio only (an encoder with
no camera) and both, against the real server with real aiortc peers on 127.0.0.1: WHIP
answers 201, a WHEP viewer asking for both gets what the show has (the other section
answered inactive), and the recording and the replay hold exactly the published tracks."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

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
