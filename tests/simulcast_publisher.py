"""A simulcast publisher for tests: what a browser sends with three encodings, from aiortc.

aiortc sends one encoding per track, so this publisher does what a browser's simulcast
does on the wire itself. Its WHIP offer has one video section with `a=rid:h send`,
`a=rid:m send`, `a=rid:l send`, `a=simulcast:send h;m;l` and the rtp-stream-id header
extension (RFC 8853, as RFC 9725 has WHIP carry them). Once connected it encodes each
counter picture (tests.media_helpers.CounterVideoTrack) three times with H264, at full,
half and quarter size, and sends each encoding on its own SSRC, every packet naming its
layer in the header extension, through the connection's own SRTP transport. A band of
noise under the counter makes each layer cost about the bitrate it is given, so the
layers' rates are known. A layer can be stopped and started again, as a browser stops
its largest encoding when its uplink narrows; with `follow_estimate`, it does so by
itself as a browser does, sending from the smallest layer up only the layers whose
rates add up to within the bandwidth the relay tells it (REMB). Each layer sends a
keyframe every second and when asked (a PLI for its SSRC).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from typing import Any

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription, clock
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    HeaderExtensionsMap,
    RtcpPacket,
    RtcpPsfbPacket,
    RtpPacket,
    unpack_remb_fci,
)

from tests.media_helpers import CounterVideoTrack

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
ABS_SEND_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
RIDS = ("h", "m", "l")
SCALES = {"h": 1, "m": 2, "l": 4}
RATES = {"h": 900_000, "m": 300_000, "l": 100_000}  # bits per second


PROBE_FIRST, PROBE_MOST = 8.0, 60.0  # seconds before a stopped layer is tried again
PROBE_HOLD = 5.0  # seconds the estimate is given to grow with a layer tried again
PROBE_KEEP = 0.8  # ... kept if the estimate is then at least this share of what is sent
PROBE_FALL = 0.85  # ... ended at once if the estimate falls under this share of its start


class SimulcastPublisher:
    def __init__(
        self,
        width: int = 640,
        height: int = 360,
        fps: int = 15,
        *,
        source: MediaStreamTrack | None = None,
        audio: MediaStreamTrack | None = None,
        noise: bool = True,
        follow_estimate: bool = False,
    ) -> None:
        self.width, self.height, self.fps = width, height, fps
        self.source = source or CounterVideoTrack(width, height, fps)
        self.noise, self.follow_estimate = noise, follow_estimate
        self.pc = RTCPeerConnection()
        transceiver = self.pc.addTransceiver("video", direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == "video/h264"])
        self.sender = transceiver.sender  # no track: aiortc's own RTP loop sends nothing
        if audio is not None:
            self.pc.addTransceiver(audio, direction="sendonly")
        self.bytes_sent = 0
        self.estimate: int | None = None  # the relay's last REMB, bit/s
        self._probing, self._floor, self._probe_wait = True, 0.0, PROBE_FIRST
        self._changed: float | None = None  # when the layers sent last changed
        self.sending = dict.fromkeys(RIDS, True)
        self.ssrcs = {rid: random.getrandbits(32) for rid in RIDS}
        self.sent = dict.fromkeys(RIDS, 0)  # frames sent per layer
        self._keyframe = dict.fromkeys(RIDS, True)
        self._task: asyncio.Task[None] | None = None
        self._ids: dict[str, int] = {}
        self._payload_type = 0

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        lines = self.pc.localDescription.sdp.split("\r\n")
        used = {int(x.split(":")[1].split()[0]) for x in lines if x.startswith("a=extmap:")}
        rid_id = next(i for i in range(1, 15) if i not in used)
        out: list[str] = []
        kind = ""
        for line in lines:
            out.append(line)
            if line.startswith("m="):
                kind = line[2:].split()[0]
            if line.startswith("a=mid:") and kind == "video":
                out.append(f"a=extmap:{rid_id} {RID_URI}")
                out.extend(f"a=rid:{rid} send" for rid in RIDS)
                out.append("a=simulcast:send " + ";".join(RIDS))
        return "\r\n".join(out)

    async def start(self, answer: str) -> None:
        """Take the WHIP answer and start sending once connected."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        for line in answer.split("\r\n"):
            if line.startswith("a=extmap:"):
                number, uri = line[len("a=extmap:") :].split()[:2]
                self._ids[uri] = int(number.split("/")[0])
            if line.startswith("a=rtpmap:") and "H264/90000" in line and not self._payload_type:
                self._payload_type = int(line[len("a=rtpmap:") :].split()[0])
        assert RID_URI in self._ids, "the answer did not take the rid header extension"
        self._task = asyncio.ensure_future(self._run())

    def set_sending(self, rid: str, sending: bool) -> None:
        if sending and not self.sending[rid]:
            self._keyframe[rid] = True
        self.sending[rid] = sending

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.pc.close()

    def _listen_for_plis(self) -> None:
        transport = self.sender.transport
        original = transport._handle_rtcp_data
        by_ssrc = {ssrc: rid for rid, ssrc in self.ssrcs.items()}

        async def handle(data: bytes) -> None:
            with contextlib.suppress(ValueError):
                for packet in RtcpPacket.parse(data):
                    if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
                        rid = by_ssrc.get(packet.media_ssrc)
                        if rid is not None:
                            self._keyframe[rid] = True
                    elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
                        with contextlib.suppress(ValueError):
                            self.estimate = unpack_remb_fci(packet.fci)[0]
                            if self.follow_estimate:
                                self._allocate(self.estimate)
            await original(data)

        transport._handle_rtcp_data = handle

    def _allocate(self, estimate: int) -> None:
        """As a browser shares its estimate between its encodings: past the estimate, the
        largest layer sending stops (the smallest always sends). A stopped layer is tried
        again after a while, as a browser probes its link, and given PROBE_HOLD seconds
        for the estimate to grow with what is sent: kept if it has, else stopped again
        and tried after twice as long. The first layers sent are such a try too."""
        now = time.monotonic()
        if self._changed is None:
            self._changed = now
        sending = [rid for rid in RIDS if self.sending[rid]]
        total = sum(RATES[rid] for rid in sending)
        if self._probing:
            if now - self._changed < PROBE_HOLD and estimate >= self._floor:
                return
            self._probing = False
            if estimate < total * PROBE_KEEP and len(sending) > 1:
                self.set_sending(sending[0], False)
                self._probe_wait = min(self._probe_wait * 2, PROBE_MOST)
                self._changed = now
            else:
                self._probe_wait = PROBE_FIRST
            return
        if total > estimate and len(sending) > 1:
            self.set_sending(sending[0], False)
            self._changed = now
            return
        stopped = [rid for rid in RIDS if not self.sending[rid]]
        if stopped and now - self._changed >= self._probe_wait:
            self.set_sending(stopped[-1], True)  # the next one up
            self._probing, self._changed, self._floor = True, now, estimate * PROBE_FALL

    async def _run(self) -> None:
        transport = self.sender.transport
        if self.pc.connectionState != "connected":
            connected = asyncio.Event()
            self.pc.on("connectionstatechange", lambda: connected.set())
            while self.pc.connectionState != "connected":
                connected.clear()
                await connected.wait()
        self._listen_for_plis()
        extensions = HeaderExtensionsMap()
        extensions.configure(
            RTCRtpParameters(
                headerExtensions=[
                    RTCRtpHeaderExtensionParameters(id=number, uri=uri)
                    for uri, number in self._ids.items()
                    if uri in (MID_URI, RID_URI, ABS_SEND_URI)
                ]
            )
        )
        encoders: dict[str, H264Encoder] = {}
        for rid in RIDS:
            encoders[rid] = H264Encoder()
            # aiortc's setter keeps a target within 0.5-3 Mbit/s (a single encoding's
            # range); a browser's small layers go far lower.
            encoders[rid]._H264Encoder__target_bitrate = RATES[rid]  # type: ignore[attr-defined]
        sequence = {rid: random.getrandbits(16) for rid in RIDS}
        source = self.source
        mid = self.sender._RTCRtpSender__mid  # type: ignore[attr-defined]
        band = self.width * (self.height // 4)
        while True:
            frame = noisy = await source.recv()
            if self.noise:
                noisy = av.VideoFrame(self.width, self.height, "yuv420p")
                luma = bytearray(bytes(frame.planes[0]))
                luma[len(luma) - band :] = os.urandom(band)
                noisy.planes[0].update(bytes(luma))
                noisy.planes[1].update(bytes(frame.planes[1]))
                noisy.planes[2].update(bytes(frame.planes[2]))
            for rid in RIDS:
                if not self.sending[rid]:
                    continue
                scale = SCALES[rid]
                layer = noisy.reformat(self.width // scale, self.height // scale)
                layer.pts, layer.time_base = frame.pts, frame.time_base
                every_second = self.sent[rid] % self.fps == 0
                force = self._keyframe[rid] or every_second
                self._keyframe[rid] = False
                payloads, timestamp = encoders[rid].encode(layer, force_keyframe=force)
                for index, payload in enumerate(payloads):
                    packet = RtpPacket(
                        payload_type=self._payload_type,
                        sequence_number=sequence[rid],
                        timestamp=timestamp,
                        ssrc=self.ssrcs[rid],
                        marker=int(index == len(payloads) - 1),
                        payload=payload,
                    )
                    packet.extensions.mid = mid
                    packet.extensions.rtp_stream_id = rid
                    packet.extensions.abs_send_time = _abs_send_time()
                    sequence[rid] = (sequence[rid] + 1) & 0xFFFF
                    data = packet.serialize(extensions)
                    try:
                        await transport._send_rtp(data)
                    except ConnectionError:
                        return
                    self.bytes_sent += len(data)
                self.sent[rid] += 1


def _abs_send_time() -> Any:
    return (clock.current_ntp_time() >> 14) & 0x00FFFFFF
