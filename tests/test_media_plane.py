"""The media plane in-process, with real aiortc peers on 127.0.0.1: no decoder ever runs
in the relay, viewers get sender reports, NACKs are answered from the packet cache,
and the audio-only decision works per viewer."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings, _decide_audio_only
from tests.media_helpers import CounterVideoTrack, answer, make_publisher


class CountingViewer:
    """A viewer that never decodes: it records what arrives."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.video: list[Any] = []
        self.srs: list[tuple[int, int, int]] = []
        self.receivers: dict[str, glue.ForwardingReceiver] = {}
        for kind in ("audio", "video"):
            receiver = glue.swap_receiver(self.pc.addTransceiver(kind, direction="recvonly"))
            receiver.on_rtp = self.on_rtp
            receiver.on_sr = lambda r, ssrc, ntp, ts: self.srs.append((ssrc, ntp, ts))
            self.receivers[kind] = receiver

    def on_rtp(self, receiver: glue.ForwardingReceiver, packet: Any, _t: int) -> None:
        if receiver.kind == "video":
            self.video.append(
                (time.monotonic(), packet.sequence_number, packet.timestamp, packet.ssrc)
            )

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp


@pytest.fixture
async def plane() -> AsyncIterator[MediaPlane]:
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"]))
    await plane.start()
    yield plane
    await plane.close()
    glue.set_host_addresses([])


async def wait_for(check, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_relay_never_decodes_and_sends_reports(plane: MediaPlane) -> None:
    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 30))
    viewer = CountingViewer()
    try:
        _, sdp = await plane.publish("7", offer.encode())
        await answer(publisher, sdp)
        await wait_for(lambda: plane.is_publishing("7"))
        _, sdp = await plane.watch("7", (await viewer.offer()).encode())
        await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: len(viewer.video) > 60 and len(viewer.srs) >= 2)
        # Neither the relay nor this viewer decoded anything (the publisher's encoder
        # is the only codec thread in the process).
        assert not [t.name for t in threading.enumerate() if t.name.endswith("-decoder")]
        seqs = [s for _, s, _, _ in viewer.video]
        assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(seqs))
        # Sender reports map NTP to this viewer's RTP timestamps: the RTP time they
        # announce is close to that of the video packets arriving at that moment.
        video_ssrc = viewer.video[-1][3]
        video_srs = [sr for sr in viewer.srs if sr[0] == video_ssrc]
        assert video_srs
        _, _, sr_ts = video_srs[-1]
        latest_ts = viewer.video[-1][2]
        assert abs(((sr_ts - latest_ts + 2**31) % 2**32) - 2**31) < 90000  # within a second

        # A NACK for a packet sent a moment ago brings it back, on the RTX stream (this
        # viewer has it already, so its receiver counts it there and hands it on no more).
        target = seqs[-5]
        streams = viewer.receivers["video"]._private("remote_streams")

        def resent() -> int:
            return sum(s.packets_received for ssrc, s in streams.items() if ssrc != video_ssrc)

        before = resent()
        await viewer.receivers["video"]._send_rtcp_nack(video_ssrc, [target])
        await wait_for(lambda: resent() > before, 3)
        stats = plane.stats("7")
        assert stats["viewers"] == 1 and stats["streams"]["video"]["packets_out"] > 60
        assert stats["streams"]["video"]["codec"] == "video/h264"
    finally:
        await viewer.pc.close()
        await publisher.close()


async def test_audio_only_for_a_viewer_whose_link_is_too_slow(plane: MediaPlane) -> None:
    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 30))
    slow, fast = CountingViewer(), CountingViewer()
    try:
        _, sdp = await plane.publish("8", offer.encode())
        await answer(publisher, sdp)
        await wait_for(lambda: plane.is_publishing("8"))
        sessions = {}
        for name, v in (("slow", slow), ("fast", fast)):
            sessions[name], sdp = await plane.watch("8", (await v.offer()).encode())
            await v.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: len(slow.video) > 20 and len(fast.video) > 20)
        relay = plane.relays["8"]
        viewer = relay.viewers[sessions["slow"]]
        video = viewer.downtracks["video"]
        video.remb = 10_000  # its estimate: far below the video's bitrate
        _decide_audio_only(viewer, video, 300_000.0, time.monotonic())
        assert video.paused and viewer.audio_only_since is not None
        await asyncio.sleep(0.3)
        slow_count, fast_count = len(slow.video), len(fast.video)
        await asyncio.sleep(1.0)
        assert len(slow.video) == slow_count, "the slow viewer still gets video"
        assert len(fast.video) > fast_count + 10, "the other viewer must not be affected"
        # After the probe delay, video comes back, starting on a keyframe.
        _decide_audio_only(viewer, video, 300_000.0, time.monotonic() + 20)
        assert not video.paused and video.need_keyframe
        await wait_for(lambda: len(slow.video) > slow_count + 10, 5)
        assert plane.set_video("8", sessions["fast"], False)
        assert relay.viewers[sessions["fast"]].downtracks["video"].paused
        assert not plane.set_video("8", "nobody", True)
    finally:
        for pc in (slow.pc, fast.pc, publisher):
            await pc.close()
