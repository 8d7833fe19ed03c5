"""What the low-latency HLS rendition costs and how late it is, beside WebRTC.

1. The writer's CPU: an aiortc publisher in this process sends 720p30 H264 (a frame
   counter over noise, about 1.5 Mbit/s, as in the recording benchmark) to a MediaPlane
   with HLS on and recording off; the time the recording thread spends in media/hls.py is
   counted with the thread's own CPU clock (Rendition.writer_cpu).
2. The delay: a real server (`vitrine serve`, recording off) gets a 640x360 counter-stamped
   publisher over WHIP; a WebRTC viewer (aiortc, WHEP) and an HLS client (blocking fetches of
   each part as the playlist's preload hint names it, decoded with PyAV as they come) run
   side by side. A frame's delay is the time it is decoded minus the time the publisher
   made it (frame counter / fps after the track's start, on the same clock).
Writes the figures to docs/perf.md (section "hls").
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import av
from perfdoc import write_section
from recording import NoisyCounterTrack

from media import aiortc_glue as glue
from media.plane import MediaPlane, MediaSettings
from tests.conftest import launch, stop
from tests.media_helpers import (
    CounterVideoTrack,
    answer,
    make_publisher,
    make_viewer,
    read_counter,
)

HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
FPS = 30


async def writer_cpu(seconds: float) -> dict[str, float]:
    glue.set_host_addresses(["127.0.0.1"])
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], hls=True))
    await plane.start()
    try:
        pc, offer = await make_publisher(NoisyCounterTrack(1280, 720, FPS), codec="video/H264")
        _, sdp = await plane.publish("1", offer.encode())
        await answer(pc, sdp)
        await asyncio.sleep(5)
        rendition = plane.rendition("1")
        assert rendition is not None
        cpu0, t0, in0 = rendition.writer_cpu, time.monotonic(), plane.stats("1")
        await asyncio.sleep(seconds)
        cpu1, t1, in1 = rendition.writer_cpu, time.monotonic(), plane.stats("1")
        parts = rendition.next_part
        await pc.close()
    finally:
        await plane.close()
    video0, video1 = in0["streams"]["video"]["bytes_in"], in1["streams"]["video"]["bytes_in"]
    return {
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "mbit": 8 * (video1 - video0) / (t1 - t0) / 1e6,
        "parts": parts,
    }


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return bytes(r.read())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def hls_client(base: str, track: CounterVideoTrack, until: float) -> list[float]:
    while True:
        try:
            text = (await asyncio.to_thread(fetch, f"{base}/index.m3u8")).decode()
            break
        except OSError:
            await asyncio.sleep(0.2)
    init = await asyncio.to_thread(fetch, f"{base}/{MAP.findall(text)[-1]}")
    hint = HINT.findall(text)[0]
    decoder: Any = av.CodecContext.create("h264", "r")
    delays: list[float] = []
    started = keyed = False
    while time.monotonic() < until:
        part = await asyncio.to_thread(fetch, f"{base}/{hint}")
        number = int(re.findall(r"p(\d+)\.m4s", hint)[0])
        hint = hint.replace(f"p{number}.m4s", f"p{number + 1}.m4s")
        with av.open(io.BytesIO(init + part)) as container:
            stream = container.streams.video[0]
            if not started:
                decoder.extradata = stream.codec_context.extradata
                started = True
            for packet in container.demux(stream):
                keyed = keyed or packet.is_keyframe
                if packet.size and keyed:  # a player starts on an independent part too
                    for frame in decoder.decode(packet):
                        now = time.monotonic()
                        assert track._start is not None
                        delays.append(now - (track._start + read_counter(frame) / FPS))
    return delays


async def webrtc_client(
    server_url: str, show: int, track: CounterVideoTrack, until: float
) -> list[float]:
    pc, offer, tracks = await make_viewer()
    request = urllib.request.Request(
        f"{server_url}/whep/{show}",
        data=offer.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp"},
    )
    reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
    await answer(pc, reply.read().decode())
    deadline = time.monotonic() + 10
    while not any(t.kind == "video" for t in tracks) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    video = next(t for t in tracks if t.kind == "video")
    delays = []
    while time.monotonic() < until:
        frame = await asyncio.wait_for(video.recv(), 10)
        assert track._start is not None
        delays.append(time.monotonic() - (track._start + read_counter(frame) / FPS))
    await pc.close()
    return delays


async def delays(seconds: float) -> dict[str, list[float]]:
    glue.set_host_addresses(["127.0.0.1"])
    folder = Path(tempfile.mkdtemp(prefix="vitrine-hls-"))
    server = launch(folder / "data", folder / "server.log", {"VITRINE_MEDIA_RECORD": "false"})
    try:
        created = json.loads(
            server.cli("shows", "create", "--title", "HLS", "--starts-at", "2030-01-01T10:00")
        )
        track = CounterVideoTrack(640, 360, FPS)
        pc, offer = await make_publisher(track, codec="video/H264")
        request = urllib.request.Request(
            f"{server.url}/whip/{created['id']}",
            data=offer.encode(),
            method="POST",
            headers={
                "Content-Type": "application/sdp",
                "Authorization": f"Bearer {created['stream_key']}",
            },
        )
        reply = await asyncio.to_thread(urllib.request.urlopen, request, None, 30)
        await answer(pc, reply.read().decode())
        await asyncio.sleep(4)  # the first segments exist
        until = time.monotonic() + seconds
        hls, webrtc = await asyncio.gather(
            hls_client(f"{server.url}/hls/{created['id']}", track, until),
            webrtc_client(server.url, created["id"], track, until),
        )
        await pc.close()
    finally:
        stop(server)
    return {"hls": hls, "webrtc": webrtc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cpu = asyncio.run(writer_cpu(args.seconds))
    d = asyncio.run(delays(args.seconds))

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
            f"{pct(values, 0.95) * 1000:.0f} |"
        )

    lines = [
        f"- HLS writer: {cpu['cpu']:.2f} % of one core for a 720p30 H264 stream at "
        f"{cpu['mbit']:.2f} Mbit/s (muxing CMAF parts and cutting segments; the AAC encode "
        "is the recording's, counted there).",
        "",
        "Publish-to-decode delay, 640x360 at 30 fps, one run, the same publisher:",
        "",
        "| path | frames | p50 ms | p95 ms |",
        "|---|---|---|---|",
        row("WebRTC (WHEP, aiortc viewer)", d["webrtc"]),
        row("LL-HLS (parts fetched as hinted, PyAV)", d["hls"]),
    ]
    print("\n".join(lines))
    if not args.no_write:
        body = "\n".join(
            [
                "## Low-latency HLS: writer CPU and delay beside WebRTC",
                "",
                f"`scripts/bench hls --seconds {args.seconds:.0f}`: the writer's CPU is the "
                "recording thread's own CPU clock spent in media/hls.py, in one process with an "
                "aiortc publisher; the delays come from a real server (`vitrine serve`, "
                "recording off) with a WHIP publisher, a WHEP viewer and an HLS client that "
                "asks for each part as the preload hint names it (held by the server until it "
                "exists) and decodes it at once, all on 127.0.0.1. A player keeps "
                "PART-HOLD-BACK (1.5 s) more behind the live edge than this client, which "
                "measures what the server adds. Publisher, server and clients share the "
                "2 cores: the publisher's encoding and the aiortc viewer's decoding weigh "
                "on the figures more than the server does.",
                "",
                *lines,
            ]
        )
        write_section("hls", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
