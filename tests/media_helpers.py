"""Synthetic media for the media-plane tests: a video whose frames carry their number.

The frame counter is drawn as 16 big black/white blocks in the luma plane, which
survive H264/VP8 compression, so a test can read back which frame a viewer decoded.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack

BITS = 16
VIDEO_CLOCK = 90000


class CounterVideoTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30, first: int = 0) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.first = first  # the number drawn on the first frame
        self.count = 0
        self._start: float | None = None
        block = width // BITS
        self._block = block
        self._grey_row = bytes([128]) * width
        self._uv = bytes([128]) * ((width // 2) * (height // 2))

    def _luma(self, n: int) -> bytes:
        block = self._block
        row = b"".join(
            (b"\xeb" if (n >> (BITS - 1 - i)) & 1 else b"\x10") * block for i in range(BITS)
        )
        row += b"\x80" * (self.width - len(row))
        band = self.height // 3
        return self._grey_row * band + row * band + self._grey_row * (self.height - 2 * band)

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self.count / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self._luma(self.first + self.count))
        frame.planes[1].update(self._uv)
        frame.planes[2].update(self._uv)
        frame.pts = int(self.count * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.count += 1
        return frame


def read_counter(frame: av.VideoFrame) -> int:
    """The number drawn into a decoded frame (any size: blocks are found by ratio)."""
    plane = frame.planes[0]
    width, height = frame.width, frame.height
    data = bytes(plane)
    y = height // 2
    row = data[y * plane.line_size : y * plane.line_size + width]
    block = width / BITS
    n = 0
    for i in range(BITS):
        x = int(block * i + block / 2)
        n = (n << 1) | (1 if row[x] > 128 else 0)
    return n


async def make_publisher(
    video: MediaStreamTrack, audio: MediaStreamTrack | None = None, codec: str | None = None
) -> tuple[RTCPeerConnection, str]:
    """A sending peer and its offer. `codec` ("video/VP8", "video/H264") makes it offer
    only that video codec (and RTX), as a browser without the other would."""
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver(video, direction="sendonly")
    if codec is not None:
        wanted = (codec.lower(), "video/rtx")
        caps = RTCRtpSender.getCapabilities("video").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() in wanted])
    pc.addTransceiver(audio or AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


async def make_viewer() -> tuple[RTCPeerConnection, str, list[MediaStreamTrack]]:
    pc = RTCPeerConnection()
    tracks: list[MediaStreamTrack] = []
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    pc.on("track", tracks.append)
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp, tracks


async def answer(pc: RTCPeerConnection, sdp: str) -> None:
    await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))


def read_back(path: Path) -> tuple[list[int], list[float], float, dict[str, str]]:
    """A recording or replay as a player finds it: the counter and time (seconds) of every
    video frame, the seconds of audio, and the codec of each stream kind."""
    with av.open(str(path)) as container:
        codecs = {s.type: s.codec_context.name for s in container.streams}
        video = container.streams.video[0]
        counters, times = [], []
        for frame in container.decode(video):
            counters.append(read_counter(frame))
            times.append(float(frame.pts * video.time_base))
        audio_seconds = 0.0
        container.seek(0)
        for packet in container.demux(container.streams.audio[0]):
            if packet.duration:
                audio_seconds += float(packet.duration * packet.time_base)
    return counters, times, audio_seconds, codecs
