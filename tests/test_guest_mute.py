"""The host's mute on the guest's relay, with real aiortc peers on 127.0.0.1: while muted
the guest's sound reaches no viewer (nor the recording), the picture goes on; unmuted,
the sound comes back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from appliance.live.guest_stage import GuestPlane
from media import aiortc_glue as glue
from media.plane import MediaSettings
from tests.media_helpers import CounterVideoTrack, answer, make_publisher
from tests.test_media_plane import wait_for


class Listener:
    """A viewer counting the packets of each kind, never decoding."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.packets: dict[str, list[float]] = {"audio": [], "video": []}
        for kind in ("audio", "video"):
            receiver = glue.swap_receiver(self.pc.addTransceiver(kind, direction="recvonly"))
            receiver.on_rtp = self.on_rtp

    def on_rtp(self, receiver: glue.ForwardingReceiver, _packet: Any, _t: int) -> None:
        self.packets[receiver.kind].append(time.monotonic())

    def since(self, kind: str, moment: float) -> int:
        return sum(1 for t in self.packets[kind] if t >= moment)


@pytest.fixture
async def plane() -> AsyncIterator[GuestPlane]:
    plane = GuestPlane(MediaSettings(host_addresses=["127.0.0.1"]))
    await plane.start()
    yield plane
    await plane.close()
    glue.set_host_addresses([])


async def test_a_muted_guest_is_not_heard(plane: GuestPlane) -> None:
    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 30))
    viewer = Listener()
    try:
        _, sdp = await plane.publish("5", offer.encode())
        await answer(publisher, sdp)
        await wait_for(lambda: plane.is_publishing("5"))
        await viewer.pc.setLocalDescription(await viewer.pc.createOffer())
        _, sdp = await plane.watch("5", viewer.pc.localDescription.sdp.encode())
        await viewer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(
            lambda: len(viewer.packets["audio"]) > 20 and len(viewer.packets["video"]) > 20
        )

        plane.muted.add("5")
        muted_at = time.monotonic() + 0.3  # packets already on their way
        await wait_for(lambda: time.monotonic() > muted_at + 1.5)
        assert viewer.since("audio", muted_at) == 0
        assert viewer.since("video", muted_at) > 20  # the picture goes on

        plane.muted.discard("5")
        back = time.monotonic()
        await wait_for(lambda: viewer.since("audio", back) > 20)
    finally:
        await viewer.pc.close()
        await publisher.close()
