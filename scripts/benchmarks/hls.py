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
3. How many clients (hls_scale.py, hls_load.py): thousands of LL-HLS clients of one live
   show following its live edge, straight from Vitrine and through docs/media.md's nginx,
   and thousands of readers of its room feed through nginx while a socket viewer chats.
Writes the figures to docs/perf.md (sections "hls", "hls-clients" and "hls-feed").
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
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
import hls_scale
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


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="writer CPU and delays")
    parser.add_argument(
        "--only",
        default="delay,clients,feed",
        help="what to measure: delay (writer CPU and delays), clients, feed",
    )
    parser.add_argument(
        "--direct-clients", default="100,200,500,1000,2000", help="HLS clients straight"
    )
    parser.add_argument("--clients", default="500,1000,2000,5000", help="HLS clients, nginx")
    parser.add_argument("--feed-readers", default="10000", help="room feed readers per step")
    parser.add_argument("--procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured a step")
    parser.add_argument("--nginx-workers", type=int, default=1)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if only & {"clients", "feed"}:
        scale(args, only)
    if "delay" in only:
        writer_and_delays(args)


def scale(args: argparse.Namespace, only: set[str]) -> None:
    direct = numbers(args.direct_clients) if "clients" in only else []
    clients = numbers(args.clients) if "clients" in only else []
    readers = numbers(args.feed_readers) if "feed" in only else []
    hls_rows, feed_rows = hls_scale.sweep(
        direct, clients, readers, args.procs, args.window, args.nginx_workers
    )
    command = (
        f"`scripts/bench hls --only {','.join(sorted(only & {'clients', 'feed'}))} "
        f"--direct-clients {args.direct_clients} --clients {args.clients} "
        f"--feed-readers {args.feed_readers} --procs {args.procs} --window {args.window:.0f}`"
    )
    setup = (
        "for each path a fresh `vitrine serve` (recording off) with a 640x360 WHIP "
        "publisher (the network lab's, its own process), Debian's nginx running "
        f"docs/media.md's block ({args.nginx_workers} worker), and the clients of "
        f"scripts/benchmarks/hls_load.py in {args.procs} processes (raw HTTP/1.1 "
        "keep-alive, uvloop), all on this machine's 2 cores, which other work shares (the "
        "load average is beside each step). CPU is each program's own processes' CPU time "
        "over the step's window, in % of one core; *machine busy*: both cores' busy time, "
        "whoever used it, in % of the two. `limit`: `generator` when the generator used "
        "85 % of its processes' cores, `CPUs` when the machine was 90 % busy (the load "
        "generator and the other work on it included): there the figures say what this "
        "machine could run, not what the server could serve."
    )
    if hls_rows:
        table = [
            *hls_scale.clients_table(hls_rows, args.procs),
            "",
            *hls_scale.clients_summary(hls_rows),
        ]
        print("\n".join(table))
        if not args.no_write:
            write_section(
                "hls-clients",
                "\n".join(
                    [
                        "## Low-latency HLS: concurrent clients, from Vitrine and through nginx",
                        "",
                        f"{command}: {setup}",
                        "",
                        "Each client follows the live edge as an LL-HLS player does: a "
                        "blocking playlist reload of the next part and that part at once, "
                        "on its two keep-alive connections (playlists, media), or the listed "
                        "parts one after the other when it is behind. Parts expected: the "
                        f"parts the show made in the {args.window:.0f} s window times the "
                        "clients; a part "
                        "counts when a client got it (a client whose next part left the "
                        "playlist starts again at the edge and misses some). *After the "
                        "first client*: when each client got a part after the first one "
                        "did (nginx's lock adds up to 0.5 s). Vitrine's answers a second "
                        "come from its /metrics counter.",
                        "",
                        *table,
                    ]
                ),
            )
    if feed_rows:
        table = hls_scale.feed_table(feed_rows, args.procs)
        print("\n".join(table))
        if not args.no_write:
            write_section(
                "hls-feed",
                "\n".join(
                    [
                        "## The room feed through nginx: readers and chat delay",
                        "",
                        f"{command}: {setup}",
                        "",
                        "The feed's server has no publisher (the show's room is open "
                        "before it goes live; the video would only weigh on the same "
                        "CPUs). Each reader reads the room's state, then long-polls "
                        "`/rooms/<show>/feed?after=<seq>` through nginx from the last number "
                        "it saw; a socket viewer connected straight to Vitrine sends a chat "
                        "message every 2.5 s carrying its send time, and the delay is when "
                        "a reader got it after that (the same CLOCK_MONOTONIC). Vitrine's "
                        "feed requests and ticks: nginx's log of what it passed to Vitrine, "
                        "the ticks being the distinct `after` numbers asked.",
                        "",
                        *table,
                    ]
                ),
            )


def writer_and_delays(args: argparse.Namespace) -> None:
    cpu = asyncio.run(writer_cpu(args.seconds))
    load_writer = os.getloadavg()[0]
    d = asyncio.run(delays(args.seconds))
    load_delays = os.getloadavg()[0]

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} | "
            f"{pct(values, 0.95) * 1000:.0f} |"
        )

    lines = [
        f"- HLS writer: {cpu['cpu']:.2f} % of one core for a 720p30 H264 stream at "
        f"{cpu['mbit']:.2f} Mbit/s (muxing CMAF parts and cutting segments; the AAC encode "
        f"is the recording's, counted there); load average {load_writer:.1f}.",
        "",
        "Publish-to-decode delay, 640x360 at 30 fps, one run, the same publisher (load "
        f"average {load_delays:.1f}):",
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
                f"`scripts/bench hls --only delay --seconds {args.seconds:.0f}`: the writer's "
                "CPU is the recording thread's own CPU clock spent in media/hls.py, in one "
                "process with an "
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
