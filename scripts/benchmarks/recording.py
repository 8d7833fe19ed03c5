"""What recording a show costs: the recorder thread's CPU, the disk it fills, and the time
from "End show" to a finished replay file; for a VP8 publisher, also the H264 transcode
made when the show ends (media/transcode.py).

An aiortc publisher in this process sends a 720p30 stream to a MediaPlane on 127.0.0.1
that records it: H264 (a frame counter over moving noise, so the encoder spends about
1.5 Mbit/s), then VP8 (a frame counter between two bands of a detailed texture panning
across the picture: noise would make VP8 spend 30 Mbit/s, nothing like a camera). The
recorder thread's own CPU time is read from /proc, so the publisher's encoding is not
counted; the transcode's is the child process's, read once it has ended. Writes the
figures to docs/perf.md (section "recording").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import av
from perfdoc import write_section

from media import transcode
from media.finalize import finalize
from media.plane import MediaPlane, MediaSettings
from media.transcode import ensure_h264
from tests.media_helpers import CounterVideoTrack, answer, make_publisher


class NoisyCounterTrack(CounterVideoTrack):
    """The counter band between two bands of noise: hard to compress, like a real scene."""

    def _luma(self, n: int) -> bytes:
        base = super()._luma(n)
        band = (self.height // 3) * self.width
        noise = random.randbytes(band)
        return noise + base[band : 2 * band] + noise + base[3 * band :]


class PanningTrack(CounterVideoTrack):
    """The counter band between two bands of a fixed random texture moving 3 pixels a
    frame: detail and motion an encoder can follow, as in a camera's picture."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        rows = random.Random(1)
        self._texture = [
            bytes(rows.randrange(40, 216) for _ in range(2 * self.width))
            for _ in range(self.height // 3)
        ]

    def _luma(self, n: int) -> bytes:
        base = super()._luma(n)
        band = (self.height // 3) * self.width
        x = (3 * n) % self.width
        texture = b"".join(row[x : x + self.width] for row in self._texture)
        return texture + base[band : 2 * band] + texture + base[3 * band :]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def video_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        last = max(p.pts for p in container.demux(stream) if p.size)
        return float(last * stream.time_base)


def thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(seconds: float, codec: str) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="vitrine-rec-"))
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=folder))
    await plane.start()
    transcoded = transcode_cpu = 0.0
    track = NoisyCounterTrack if codec == "video/H264" else PanningTrack
    try:
        pc, offer = await make_publisher(track(1280, 720, 30), codec=codec)
        _, sdp = await plane.publish("1", offer.encode())
        await answer(pc, sdp)
        await asyncio.sleep(5)  # the encoder settles on its bitrate
        recorder = plane.recording("1")
        assert recorder is not None and recorder.native_id is not None
        cpu0, in0, t0 = thread_cpu(recorder.native_id), recorder.bytes_in, time.monotonic()
        part = recorder.path
        assert part is not None
        size0 = part.stat().st_size
        await asyncio.sleep(seconds)
        cpu1, in1, t1 = thread_cpu(recorder.native_id), recorder.bytes_in, time.monotonic()
        size1 = part.stat().st_size
        ended = time.monotonic()
        await plane.end_show("1")
        closed = time.monotonic() - ended
        await pc.close()
        recorded = await asyncio.to_thread(video_seconds, part)
        started, child0 = time.monotonic(), children_cpu()
        parts = await ensure_h264([part])  # nothing to do for H264
        transcoded, transcode_cpu = time.monotonic() - started, children_cpu() - child0
        await asyncio.to_thread(finalize, parts, folder / "replay.mp4", folder / "poster.jpg")
        finalised = time.monotonic() - started
        replay_size = (folder / "replay.mp4").stat().st_size
    finally:
        await plane.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "mbit": 8 * (in1 - in0) / (t1 - t0) / 1e6,
        "mb_per_min": (size1 - size0) / (t1 - t0) * 60 / 1e6,
        "close": closed,
        "finalise": finalised,
        "total": recorded,
        "transcode_cpu_per_min": transcode_cpu / recorded * 60,
        "transcode_wall_per_min": transcoded / recorded * 60,
        "replay_mb_per_min": replay_size / recorded * 60 / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    r = asyncio.run(measure(args.seconds, "video/H264"))
    v = asyncio.run(measure(args.seconds, "video/VP8"))
    lines = [
        "H264 publisher:",
        "",
        f"- Recorder thread: {r['cpu']:.1f} % of one core for a 720p30 stream at "
        f"{r['mbit']:.2f} Mbit/s (H264 remuxed, Opus to AAC).",
        f"- Disk: {r['mb_per_min']:.1f} MB a minute.",
        f"- End show to a closed recording: {r['close']:.2f} s; to the finished replay "
        f"file and poster ({r['total']:.0f} s recorded): {r['close'] + r['finalise']:.2f} s.",
        "",
        "VP8 publisher:",
        "",
        f"- Recorder thread: {v['cpu']:.1f} % of one core for a 720p30 stream at "
        f"{v['mbit']:.2f} Mbit/s (VP8 into Matroska, Opus to AAC).",
        f"- Disk: {v['mb_per_min']:.1f} MB a minute while live; the replay (H264 at "
        f"CRF {transcode.CRF}, preset {transcode.PRESET}): {v['replay_mb_per_min']:.1f} MB "
        "a minute.",
        f"- H264 transcode at the end of the show (one core, nice 19, otherwise idle "
        f"machine): {v['transcode_cpu_per_min']:.1f} s of CPU and "
        f"{v['transcode_wall_per_min']:.1f} s of wall time per minute of show.",
        f"- End show to a closed recording: {v['close']:.2f} s; to the finished replay "
        f"file and poster ({v['total']:.0f} s recorded, transcode included): "
        f"{v['close'] + v['finalise']:.2f} s.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        body = "\n".join(
            [
                "## Recording",
                "",
                f"`scripts/bench recording --seconds {args.seconds:.0f}`: an aiortc publisher "
                "in the same process sends",
                "720p30 H264 (a frame counter over noise), then VP8 (a frame counter between "
                "bands of a panning",
                "texture), to a recording MediaPlane on 127.0.0.1; the recorder thread's own "
                "CPU time is read",
                "from /proc, the transcode's from the child process's usage.",
                "",
                *lines,
            ]
        )
        write_section("recording", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
