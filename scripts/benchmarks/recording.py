"""What recording a show costs: the recorder thread's CPU, the disk it fills, and the time
from "End show" to a finished replay file.

An aiortc publisher in this process sends a 720p30 H264 stream (a frame counter over
moving noise, so the encoder spends about 1.5 Mbit/s) to a MediaPlane on 127.0.0.1 that
records it. The recorder thread's own CPU time is read from /proc, so the publisher's
encoding is not counted. Writes the figures to docs/perf.md (section "recording").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from perfdoc import write_section

from media.finalize import finalize
from media.plane import MediaPlane, MediaSettings
from tests.media_helpers import CounterVideoTrack, answer, make_publisher


class NoisyCounterTrack(CounterVideoTrack):
    """The counter band between two bands of noise: hard to compress, like a real scene."""

    def _luma(self, n: int) -> bytes:
        base = super()._luma(n)
        band = (self.height // 3) * self.width
        noise = random.randbytes(band)
        return noise + base[band : 2 * band] + noise + base[3 * band :]


def thread_cpu(native_id: int) -> float:
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(seconds: float) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="vitrine-rec-"))
    plane = MediaPlane(MediaSettings(host_addresses=["127.0.0.1"], record_dir=folder))
    await plane.start()
    try:
        pc, offer = await make_publisher(NoisyCounterTrack(1280, 720, 30))
        _, sdp = await plane.publish("1", offer.encode())
        await answer(pc, sdp)
        await asyncio.sleep(5)  # the encoder settles on its bitrate
        recorder = plane.recording("1")
        assert recorder is not None and recorder.native_id is not None
        cpu0, in0, t0 = thread_cpu(recorder.native_id), recorder.bytes_in, time.monotonic()
        part = recorder.path
        size0 = part.stat().st_size
        await asyncio.sleep(seconds)
        cpu1, in1, t1 = thread_cpu(recorder.native_id), recorder.bytes_in, time.monotonic()
        size1 = part.stat().st_size
        ended = time.monotonic()
        await plane.end_show("1")
        closed = time.monotonic() - ended
        await pc.close()
        started = time.monotonic()
        await asyncio.to_thread(finalize, [part], folder / "replay.mp4", folder / "poster.jpg")
        finalised = time.monotonic() - started
    finally:
        await plane.close()
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "cpu": 100 * (cpu1 - cpu0) / (t1 - t0),
        "mbit": 8 * (in1 - in0) / (t1 - t0) / 1e6,
        "mb_per_min": (size1 - size0) / (t1 - t0) * 60 / 1e6,
        "close": closed,
        "finalise": finalised,
        "total": t1 - t0 + 5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    r = asyncio.run(measure(args.seconds))
    lines = [
        f"- Recorder thread: {r['cpu']:.1f} % of one core for a 720p30 stream at "
        f"{r['mbit']:.2f} Mbit/s (H264 remuxed, Opus to AAC).",
        f"- Disk: {r['mb_per_min']:.1f} MB a minute.",
        f"- End show to a closed recording: {r['close']:.2f} s; to the finished replay "
        f"file and poster ({r['total']:.0f} s recorded): {r['close'] + r['finalise']:.2f} s.",
    ]
    print("\n".join(lines))
    if not args.no_write:
        body = "\n".join(
            [
                "## Recording",
                "",
                f"`scripts/bench recording --seconds {args.seconds:.0f}`: an aiortc publisher "
                "in the same process sends",
                "720p30 H264 (a frame counter over noise) to a recording MediaPlane on "
                "127.0.0.1; the recorder",
                "thread's own CPU time is read from /proc.",
                "",
                *lines,
            ]
        )
        write_section("recording", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
