"""Relay workers (media.workers): the viewers' peer connections in worker processes.

Against a real `vitrine serve` with two workers and real aiortc peers: viewers are placed
across both workers and decode the publisher's frames in order, a DELETE closes the
session in its worker, viewers past media.max_viewers are refused (their player plays
HLS), /metrics and media-stats count the viewers, and a worker killed with SIGKILL is
restarted while the other's viewers keep decoding. In-process, with a MediaPlane and its
two worker processes: the keyframe requests of many viewers on both workers reach the
publisher coalesced, and a NACK is answered from the worker's own packet cache.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket, RtpPacket

from appliance.config import ConfigError, load_config
from appliance.live.bridge import max_viewers, relay_workers
from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings
from media.workers.capacity import default_max_viewers, usable_cpus, workers_for
from media.workers.feed import FedPacket, FedReport, decode, encode_packet, encode_sender_report
from tests.conftest import PASSWORD, LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_viewer, read_counter
from tests.test_media_http import Show, ahttp, http, publish, until
from tests.test_media_plane import CountingViewer, wait_for
from tests.test_metrics import TOKEN, samples, value

pytestmark = pytest.mark.usefixtures("loopback_candidates")

MAX_VIEWERS = 3


class Staff:
    """A signed-in admin, for the show's media-stats."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        page = self.opener.open(server.url + "/login").read().decode()
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found
        body = urllib.parse.urlencode(
            {"email": "staff@example.com", "password": PASSWORD, "csrf_token": found.group(1)}
        ).encode()
        self.opener.open(server.url + "/login", data=body).read()

    def stats(self, show: int) -> dict[str, Any]:
        url = f"{self.server.url}/api/shows/{show}/media-stats"
        result: dict[str, Any] = json.loads(self.opener.open(url, timeout=10).read())
        return result


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {
            "VITRINE_MEDIA_WORKERS": "2",
            "VITRINE_MEDIA_MAX_VIEWERS": str(MAX_VIEWERS),
            "VITRINE_METRICS_TOKEN": TOKEN,
            "VITRINE_LIMITS_WHEP_SESSIONS_PER_ADDRESS": "0",
            "VITRINE_MEDIA_GRACE_SECONDS": "30",
        },
    )
    live.cli_input(["create-admin", "--email", "staff@example.com", "--password-stdin"], PASSWORD)
    yield live
    stop(live)


@pytest.fixture
def show(server: LiveServer) -> Show:
    created = json.loads(
        server.cli("shows", "create", "--title", "Workers", "--starts-at", "2030-01-01T10:00")
    )
    return Show(server, created["id"], created["stream_key"])


@pytest.fixture
async def pcs() -> AsyncIterator[list[RTCPeerConnection]]:
    made: list[RTCPeerConnection] = []
    yield made
    for pc in made:
        await pc.close()


async def watch_or_status(show: Show) -> tuple[int, RTCPeerConnection, str, list[Any]]:
    pc, offer, tracks = await make_viewer()
    reply = await ahttp("POST", show.whep, offer.encode(), {"Content-Type": "application/sdp"})
    if reply.status == 201:
        await answer(pc, reply.body)
        return 201, pc, reply.headers["Location"], tracks
    await pc.close()
    return reply.status, pc, "", []


async def counters(tracks: list[Any], n: int) -> list[int]:
    video = next(t for t in tracks if t.kind == "video")
    return [read_counter(await asyncio.wait_for(video.recv(), 10)) for _ in range(n)]


async def reaches(tracks: list[Any], target: int, limit: float = 20.0) -> bool:
    """Whether the viewer decodes the frame numbered `target` (or a later one) in time,
    frames buffered before it read and passed over."""
    video = next(t for t in tracks if t.kind == "video")
    deadline = time.monotonic() + limit
    try:
        while True:
            frame = await asyncio.wait_for(video.recv(), max(0.1, deadline - time.monotonic()))
            if read_counter(frame) >= target:
                return True
    except TimeoutError:
        return False


def in_order(seen: list[int]) -> bool:
    return all(b > a for a, b in itertools.pairwise(seen))


def scrape(server: LiveServer) -> dict[str, Any]:
    reply = http("GET", server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 200, reply.body
    return samples(reply.body)


def placement(stats: dict[str, Any]) -> list[int]:
    return [w["viewers"] for w in stats["workers"]]


async def test_viewers_across_workers_decode_in_order_and_a_full_show_refuses(
    server: LiveServer, show: Show, pcs: list[RTCPeerConnection]
) -> None:
    staff = Staff(server)
    publisher, _ = await publish(show, CounterVideoTrack(320, 180, 30))
    pcs.append(publisher)
    await until(lambda: show.status()["publishing"])
    viewers = []
    for _ in range(MAX_VIEWERS):
        status, pc, location, tracks = await watch_or_status(show)
        assert status == 201
        pcs.append(pc)
        viewers.append((pc, location, tracks))
    for _, _, tracks in viewers:
        seen = await counters(tracks, 20)
        assert in_order(seen), seen
    await until(lambda: staff.stats(show.id)["viewers"] == MAX_VIEWERS)
    stats = staff.stats(show.id)
    # Least loaded first: both workers hold viewers.
    assert sorted(placement(stats)) == [1, 2], stats["workers"]
    assert all(w["alive"] and w["fed"] > 0 for w in stats["workers"])
    await until(lambda: staff.stats(show.id)["streams"]["video"]["viewers"] == MAX_VIEWERS)
    assert staff.stats(show.id)["streams"]["video"]["packets_out"] > 0

    # Past media.max_viewers the show is full for WebRTC: the player plays HLS.
    status, *_ = await watch_or_status(show)
    assert status == 503
    found = scrape(server)
    assert value(found, "vitrine_viewers", show=str(show.id), path="webrtc") == MAX_VIEWERS
    await until(
        lambda: (
            value(
                scrape(server),
                "vitrine_relay_packets_forwarded_total",
                show=str(show.id),
                kind="video",
            )
            > 0
        )
    )

    # DELETE closes the session in its worker: the worker's stream loses the viewer.
    reply = await ahttp("DELETE", server.url + viewers[0][1])
    assert reply.status == 200
    await until(lambda: staff.stats(show.id)["viewers"] == MAX_VIEWERS - 1)
    await until(lambda: staff.stats(show.id)["streams"]["video"]["viewers"] == MAX_VIEWERS - 1)
    assert (await ahttp("DELETE", server.url + viewers[0][1])).status == 404
    # Its place is free again.
    status, pc, _, tracks = await watch_or_status(show)
    pcs.append(pc)
    assert status == 201
    assert in_order(await counters(tracks, 10))


async def test_a_killed_worker_is_restarted_and_the_others_keep_watching(
    server: LiveServer, show: Show, pcs: list[RTCPeerConnection]
) -> None:
    staff = Staff(server)
    track = CounterVideoTrack(320, 180, 30)
    publisher, _ = await publish(show, track)
    pcs.append(publisher)
    await until(lambda: show.status()["publishing"])
    viewers = []
    for _ in range(2):
        status, pc, _, tracks = await watch_or_status(show)
        assert status == 201
        pcs.append(pc)
        viewers.append(tracks)
    for tracks in viewers:
        await counters(tracks, 5)
    await until(lambda: staff.stats(show.id)["viewers"] == 2)
    workers = staff.stats(show.id)["workers"]
    assert placement(staff.stats(show.id)) == [1, 1]
    victim = workers[0]
    # Which of the two viewers is on worker 0 is not known here: both keep being read,
    # and exactly one of them must go on decoding.
    os.kill(victim["pid"], signal.SIGKILL)
    await until(lambda: staff.stats(show.id)["viewers"] == 1)

    # Frames drawn a second after the kill reach the viewer still connected, only.
    target = track.count + 30
    results = await asyncio.gather(*(reaches(t, target) for t in viewers))
    assert sorted(results) == [False, True], results
    await until(lambda: staff.stats(show.id)["workers"][0]["alive"], 20)
    again = staff.stats(show.id)["workers"][0]
    assert again["restarts"] == 1 and again["pid"] != victim["pid"]
    assert "relay worker 0" in server.output() and "restarting it" in server.output()
    # The restarted worker, now the least loaded, takes the next viewer, who watches.
    status, pc, _, tracks = await watch_or_status(show)
    pcs.append(pc)
    assert status == 201
    assert in_order(await counters(tracks, 20))
    await until(lambda: placement(staff.stats(show.id)) == [1, 1])


async def test_viewers_in_a_worker_wait_for_the_next_publisher(
    server: LiveServer, show: Show, pcs: list[RTCPeerConnection]
) -> None:
    staff = Staff(server)
    first, location = await publish(show, CounterVideoTrack(320, 180, 30))
    pcs.append(first)
    await until(lambda: show.status()["publishing"])
    status, pc, _, tracks = await watch_or_status(show)
    assert status == 201
    pcs.append(pc)
    await counters(tracks, 5)
    reply = await ahttp(
        "DELETE", server.url + location, headers={"Authorization": f"Bearer {show.key}"}
    )
    assert reply.status == 200
    await first.close()
    await until(lambda: not show.status()["publishing"])
    # The show is in its grace period: the viewer waits in its worker, and is counted.
    stats = staff.stats(show.id)
    assert stats["viewers"] == 1 and sum(placement(stats)) == 1
    # The next publisher's frames reach it: a new source across the worker boundary.
    second, _ = await publish(show, CounterVideoTrack(320, 180, 30, first=10_000))
    pcs.append(second)
    assert await reaches(tracks, 10_030)


# -- the feed's datagrams and the capacity formula ------------------------------------


def test_the_feed_carries_a_packet_and_a_sender_report_whole() -> None:
    packet = RtpPacket(sequence_number=65535, timestamp=2**32 - 1, marker=1, payload=b"\x65" * 1100)
    packet.extensions.abs_send_time = 0
    packet.extensions.audio_level = (True, 127)
    fed = decode(encode_packet("12", "video", 2**32 + 5, "video/h264", 90000, packet))
    assert isinstance(fed, FedPacket)
    assert (fed.show, fed.kind, fed.generation, fed.codec, fed.clock_rate) == (
        "12",
        "video",
        5,
        "video/h264",
        90000,
    )
    got = fed.packet
    assert (got.sequence_number, got.timestamp, got.marker, got.payload) == (
        65535,
        2**32 - 1,
        1,
        packet.payload,
    )
    assert got.extensions.abs_send_time == 0 and got.extensions.audio_level == (True, 127)
    bare = decode(encode_packet("3", "audio", 1, "audio/opus", 48000, RtpPacket(payload=b"x")))
    assert isinstance(bare, FedPacket)
    assert bare.packet.extensions.abs_send_time is None
    assert bare.packet.extensions.audio_level is None
    report = decode(encode_sender_report("12", "audio", 7, 2**63 + 1, 4242))
    assert report == FedReport("12", "audio", 7, 2**63 + 1, 4242)
    # A simulcast layer's packet and report name the layer and the publisher's layers.
    layer = decode(encode_packet("12", "video", 9, "video/h264", 90000, packet, "m", "h,m,l"))
    assert isinstance(layer, FedPacket) and (layer.rid, layer.rids) == ("m", "h,m,l")
    assert layer.packet.payload == packet.payload
    report = decode(encode_sender_report("12", "video", 9, 1, 2, "l", "h,m,l"))
    assert report == FedReport("12", "video", 9, 1, 2, "l", "h,m,l")
    # Anything else is dropped, never raised on.
    for junk in (b"", b"\x01", b"\x09" * 40, b"\x01" + b"\x00" * 20 + b"\xff", b"\x02" * 5):
        assert decode(junk) is None


def test_usable_cpus_follow_the_containers_quota(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    everything = usable_cpus(tmp_path / "absent")
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == everything
    cpu_max.write_text("150000 100000\n")  # --cpus 1.5: two cores, the second half used
    assert usable_cpus(cpu_max) == min(everything, 2)
    cpu_max.write_text("50000 100000\n")
    assert usable_cpus(cpu_max) == 1
    cpu_max.write_text("junk\n")
    assert usable_cpus(cpu_max) == everything


def test_the_default_max_viewers_follows_the_relay_cores() -> None:
    assert default_max_viewers(0, 8) == 112  # one event loop, whatever the machine
    assert default_max_viewers(2, 2) == 225
    assert default_max_viewers(4, 2) == 225  # workers past the cores add nothing
    assert default_max_viewers(8, 8) == 902
    config = load_config(environ={"VITRINE_MEDIA_WORKERS": "2"})
    assert config.media.max_viewers == 0 and config.media.workers == 2
    assert max_viewers(config) == default_max_viewers(2, os.cpu_count() or 1)
    assert max_viewers(load_config(environ={"VITRINE_MEDIA_MAX_VIEWERS": "40"})) == 40
    # -1 (the default): one worker per core, at most 8, none on a one-core machine; 0:
    # none.
    assert [workers_for(-1, cpus) for cpus in (1, 2, 4, 64)] == [0, 2, 4, 8]
    assert workers_for(0, 8) == 0 and workers_for(3, 1) == 3
    default = load_config(environ={})
    assert default.media.workers == -1
    assert relay_workers(default) == workers_for(-1, usable_cpus())
    assert relay_workers(load_config(environ={"VITRINE_MEDIA_WORKERS": "0"})) == 0
    assert usable_cpus() <= (os.cpu_count() or 1)
    with pytest.raises(ConfigError):
        load_config(environ={"VITRINE_MEDIA_WORKERS": "-2"})


# -- in-process: a MediaPlane and its worker processes ----------------------------------


@pytest.fixture
async def plane() -> AsyncIterator[MediaPlane]:
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], workers=2))
    await plane.start()
    yield plane
    await plane.close()
    glue.set_host_addresses([])


def count_plis(publisher: RTCPeerConnection) -> list[float]:
    """Times the publisher's video sender got a PLI."""
    plis: list[float] = []
    sender = next(s for s in publisher.getSenders() if s.track and s.track.kind == "video")
    original = sender._handle_rtcp_packet

    async def counting(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            plis.append(time.monotonic())
        await original(packet)

    sender._handle_rtcp_packet = counting  # type: ignore[method-assign]
    return plis


async def test_keyframe_requests_are_coalesced_and_nacks_answered_by_the_worker(
    plane: MediaPlane,
) -> None:
    from tests.media_helpers import make_publisher

    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 30))
    plis = count_plis(publisher)
    viewers = [CountingViewer() for _ in range(4)]
    try:
        _, sdp = await plane.publish("9", offer.encode())
        await answer(publisher, sdp)
        await wait_for(lambda: plane.is_publishing("9"))
        for viewer in viewers:
            _, sdp = await plane.watch("9", (await viewer.offer()).encode())
            await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: all(len(v.video) > 30 for v in viewers), 15)
        assert placement(plane.stats("9")) == [2, 2]
        assert plis, "the viewers' first keyframes were asked of the publisher"

        # Every viewer asks for a keyframe 20 times a second for 3 s: up to 240 requests on
        # two workers reach the publisher as at most one per KEYFRAME_INTERVAL (0.5 s).
        start = time.monotonic()
        asked = 0
        while time.monotonic() - start < 3.0:
            for viewer in viewers:
                ssrc = viewer.video[-1][3]
                await viewer.receivers["video"]._send_rtcp_pli(ssrc)
                asked += 1
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)
        during = [t for t in plis if t >= start]
        assert asked >= 100
        assert 3 <= len(during) <= 8, len(during)

        # A NACK (the viewer lost a packet) is answered by the viewer's worker, on RTX,
        # from the worker's own packet cache (this viewer has the packet already, so its
        # receiver counts it on the RTX stream and hands it on no more).
        viewer = viewers[0]
        seqs = [s for _, s, _, _ in viewer.video]
        target, ssrc = seqs[-5], viewer.video[-1][3]
        streams = viewer.receivers["video"]._private("remote_streams")

        def resent() -> int:
            return sum(s.packets_received for other, s in streams.items() if other != ssrc)

        before = resent()
        await viewer.receivers["video"]._send_rtcp_nack(ssrc, [target])
        await wait_for(lambda: resent() > before, 3)
        await wait_for(lambda: plane.stream_totals("9", "video")["retransmitted"] >= 1, 3)
        assert plane.stream_totals("9", "video")["packets_out"] > 100
    finally:
        for viewer in viewers:
            await viewer.pc.close()
        await publisher.close()


async def test_a_guests_plane_starts_its_workers_at_its_first_publisher() -> None:
    """The guest's relay (appliance.live.guest_stage) has workers of its own, but a show
    seldom has a guest: its plane holds no worker process until a guest publishes."""
    from tests.media_helpers import make_publisher

    plane = MediaPlane(
        MediaSettings(host_addresses=["127.0.0.1"], workers=1, workers_on_first_use=True)
    )
    await plane.start()
    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 30))
    viewer = CountingViewer()
    try:
        assert plane.pool is not None and not plane.pool.started
        assert plane.pool.workers == [None]
        _, sdp = await plane.publish("5", offer.encode())
        worker = plane.pool.workers[0]
        assert plane.pool.started and worker is not None and worker.alive
        await answer(publisher, sdp)
        await wait_for(lambda: plane.is_publishing("5"))
        _, sdp = await plane.watch("5", (await viewer.offer()).encode())
        await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: len(viewer.video) > 10, 15)
        assert placement(plane.stats("5")) == [1]
        assert plane.pool.workers[0] is worker  # started once
    finally:
        await viewer.pc.close()
        await publisher.close()
        await plane.close()
        glue.set_host_addresses([])
