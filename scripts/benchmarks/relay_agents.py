"""Processes of the relay benchmark, each driven by JSON lines on stdin/stdout.

  relay_agents.py publisher URL KEY   publish a pre-encoded 720p30 H264 + Opus stream
  relay_agents.py viewers URL light   hold many WHEP viewers that count packets at the socket
  relay_agents.py viewers URL full    hold a few WHEP viewers that decode every frame
  relay_agents.py baseline PORT       a WHIP/WHEP server built on aiortc's MediaRelay,
                                      decoding once and re-encoding per viewer

Commands (one JSON object a line) and answers are described in each agent.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack  # noqa: E402

from media import aiortc_glue as glue  # noqa: E402

FPS = 30
WIDTH, HEIGHT = 1280, 720


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def commands() -> Any:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield json.loads(line)


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def post_sdp(url: str, sdp: str, headers: dict[str, str] | None = None) -> tuple[str, str]:
    request = urllib.request.Request(
        url,
        data=sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.read().decode(), r.headers["Location"]


# -- publisher ---------------------------------------------------------------------


def encode_clip(seconds: int = 10, bitrate: int = 1_200_000) -> list[bytes]:
    """A 720p30 H264 clip with enough motion to need its bitrate; keyframe every 0.5 s."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = FPS
    codec.bit_rate = bitrate
    codec.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={FPS // 2}:min-keyint={FPS // 2}:scenecut=0:bframes=0",
        "maxrate": str(bitrate),
        "bufsize": str(bitrate // 2),
    }
    uv = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    packets: list[bytes] = []
    noise_rows = HEIGHT // 4
    for i in range(seconds * FPS):
        shade = bytes([(i * 3) % 220 + 16]) * WIDTH
        y = shade * (HEIGHT - noise_rows) + os.urandom(WIDTH * noise_rows // 16) * 16
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(y)
        frame.planes[1].update(uv)
        frame.planes[2].update(uv)
        frame.pts = i
        packets += [bytes(p) for p in codec.encode(frame)]
    packets += [bytes(p) for p in codec.encode(None)]
    return packets


class ClipTrack(MediaStreamTrack):
    """Loops the pre-encoded clip at 30 fps; aiortc packetises it without encoding."""

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.frames = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet:
        if self.start is None:
            self.start = time.monotonic()
        delay = self.start + self.frames / FPS - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.clip[self.frames % len(self.clip)])
        packet.pts = self.frames * (90000 // FPS)
        packet.time_base = fractions.Fraction(1, 90000)
        self.frames += 1
        return packet


async def run_publisher(url: str, key: str) -> None:
    glue.set_host_addresses(["127.0.0.1"])
    clip = encode_clip()
    track = ClipTrack(clip)
    pc = RTCPeerConnection()
    video = pc.addTransceiver(track, direction="sendonly")
    # The clip is H264: offer nothing else.
    video.setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == "video/H264"]
    )
    audio = pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer, _ = await asyncio.to_thread(
        post_sdp, url, pc.localDescription.sdp, {"Authorization": f"Bearer {key}"}
    )
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    clip_bytes = sum(len(p) for p in clip)
    reply({"ready": True, "clip_kbps": round(clip_bytes * 8 / (len(clip) / FPS) / 1000)})
    async for cmd in commands():
        if cmd["op"] == "report":
            stats = {}
            for kind, tr in (("video", video), ("audio", audio)):
                for s in (await tr.sender.getStats()).values():
                    if s.type == "outbound-rtp":
                        stats[kind] = s.packetsSent
            reply(
                {
                    "frames": track.frames,
                    "packets": stats,
                    "cpu": cpu_seconds(),
                    "t": time.monotonic(),
                }
            )
        elif cmd["op"] == "stop":
            break
    await pc.close()


# -- viewers -----------------------------------------------------------------------


async def run_viewers(url: str, kind: str) -> None:
    """Light viewers (kind "light") or full ones ("full"), see relay_viewers.py.

    Commands: {"op": "add", "count": n}, {"op": "reset"} (zero the counters, answers
    the time), {"op": "report"} (every viewer's counters, the process's CPU seconds
    and the time), {"op": "stop"}.
    """
    from relay_viewers import FullViewer, LightViewer, SocketCounter

    glue.set_host_addresses(["127.0.0.1"])
    counter = SocketCounter()
    viewers: list[Any] = []

    def post(target: str, sdp: str) -> str:
        # As the player does: a 409 (a busy relay worker did not answer in time, or the
        # show is between publishers) is tried again after its Retry-After.
        for _attempt in range(5):
            try:
                return post_sdp(target, sdp)[0]
            except urllib.error.HTTPError as exc:
                if exc.code != 409:
                    raise
                time.sleep(float(exc.headers.get("Retry-After") or 3))
        return post_sdp(target, sdp)[0]

    async def receiver_reports() -> None:
        while True:
            await asyncio.sleep(1.0)
            for v in list(viewers):
                if isinstance(v, LightViewer):
                    try:
                        await v.send_receiver_report()
                    except Exception as exc:  # one viewer's failure must not silence all
                        print(f"receiver report failed: {exc!r}", file=sys.stderr, flush=True)

    reports = asyncio.ensure_future(receiver_reports())
    reply({"ready": True})
    async for cmd in commands():
        op = cmd["op"]
        if op == "add":
            new = [
                LightViewer(counter) if kind == "light" else FullViewer()
                for _ in range(cmd["count"])
            ]
            # Listed before they connect: the receiver reports begin as each one is up,
            # not once the whole step has joined (a relay drops a viewer that sends no
            # RTCP for 30 s, and a step of hundreds can take longer than that to join).
            viewers += new
            for chunk in range(0, len(new), 10):
                await asyncio.gather(*(v.connect(url, post) for v in new[chunk : chunk + 10]))
            reply({"viewers": len(viewers)})
        elif op == "reset":
            for v in viewers:
                v.reset()
            reply({"ok": True, "t": time.monotonic()})
        elif op == "report":
            reply(
                {
                    "viewers": [v.report() for v in viewers],
                    "cpu": cpu_seconds(),
                    "t": time.monotonic(),
                }
            )
        elif op == "stop":
            break
    reports.cancel()
    await asyncio.gather(*(v.pc.close() for v in viewers), return_exceptions=True)


# -- the MediaRelay baseline server --------------------------------------------------


async def run_baseline(port: int) -> None:
    """aiortc's own recipe: decode the publisher once, re-encode for every viewer."""
    from aiortc.contrib.media import MediaRelay
    from quart import Quart, request

    glue.set_host_addresses(["127.0.0.1"])
    app = Quart("baseline")
    relay = MediaRelay()
    tracks: dict[str, MediaStreamTrack] = {}
    pcs: set[RTCPeerConnection] = set()

    @app.post("/whip/<int:show>")
    async def whip(show: int) -> Any:
        pc = RTCPeerConnection()
        pcs.add(pc)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            tracks[track.kind] = track

        await pc.setRemoteDescription(
            RTCSessionDescription(await request.get_data(as_text=True), "offer")
        )
        await pc.setLocalDescription(await pc.createAnswer())
        return (
            pc.localDescription.sdp,
            201,
            {"Location": "/whip/1/x", "Content-Type": "application/sdp"},
        )

    @app.post("/whep/<int:show>")
    async def whep(show: int) -> Any:
        pc = RTCPeerConnection()
        pcs.add(pc)
        await pc.setRemoteDescription(
            RTCSessionDescription(await request.get_data(as_text=True), "offer")
        )
        for kind in ("audio", "video"):
            if kind in tracks:
                pc.addTrack(relay.subscribe(tracks[kind], buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        return (
            pc.localDescription.sdp,
            201,
            {"Location": "/whep/1/x", "Content-Type": "application/sdp"},
        )

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    await serve(app, config)  # type: ignore[arg-type]


def main() -> None:
    role = sys.argv[1]
    if role == "publisher":
        asyncio.run(run_publisher(sys.argv[2], sys.argv[3]))
    elif role == "viewers":
        asyncio.run(run_viewers(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "light"))
    elif role == "baseline":
        asyncio.run(run_baseline(int(sys.argv[2])))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
