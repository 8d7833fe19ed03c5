"""The time to compose the replay of a show with a guest (media/compose.py): a host's
replay and a guest's recording, both synthesised with PyAV (H264 at 30 frames a second
with AAC sound, as live recordings are; a moving pattern, so the encoder
has work), the guest side by side for the first half and inset for the second. The
composition runs as the server runs it, in a child process at nice 19 on one CPU; its
wall time and CPU time are written to docs/perf.md (section "guest-compose").

    scripts/bench guest-compose [--seconds 600] [--host 1280x720] [--guest 540x960]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import av
from perfdoc import write_section

from media.compose import as_frame, compose_in_child

FPS = 30


def pattern(width: int, height: int, n: int, shade: int) -> tuple[bytes, bytes, bytes]:
    """A diagonal ramp moving by a few pixels a frame, tinted by `shade`."""
    row = bytes((x + 4 * n) % 200 + 16 for x in range(width + height))
    luma = b"".join(row[y : y + width] for y in range(height))
    size = width * height // 4
    return luma, bytes([shade]) * size, bytes([255 - shade]) * size


def synthesise(path: Path, width: int, height: int, seconds: float, shade: int) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.options = {"preset": "ultrafast", "bf": "0", "g": "60"}
        sound = out.add_stream("aac", rate=48000)
        frames = [pattern(width, height, n, shade) for n in range(50)]
        audio_at = 0
        for n in range(int(seconds * FPS)):
            frame = as_frame(frames[n % len(frames)], width, height)
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
            while audio_at < (n + 1) * 48000 // FPS:
                chunk = av.AudioFrame(format="fltp", layout="mono", samples=1024)
                for plane in chunk.planes:
                    plane.update(bytes(plane.buffer_size))
                chunk.sample_rate, chunk.pts = 48000, audio_at
                out.mux(sound.encode(chunk))
                audio_at += 1024
        out.mux(video.encode(None))
        out.mux(sound.encode(None))


def record(line: str) -> None:
    """Write the figures' table row `line` into docs/perf.md."""
    write_section(
        "guest-compose",
        "## Composing the replay of a show with a guest\n\n"
        "`scripts/bench guest-compose` (scripts/benchmarks/guest_compose.py): a host's "
        "replay and a guest's recording synthesised with PyAV, the guest side by side for "
        "the first half and inset for the second, composed once as the server does when "
        "the show ends (media/compose.py: every frame of the host's replay decoded, the "
        "guest's picture drawn in, H264 encoded again with x264 `veryfast`; both sounds "
        "decoded, mixed and encoded again in AAC), in a child "
        "process at nice 19 on one CPU. Wall time is what the replay waits for its guest; "
        "CPU time is the child's. The machine is shared: the load average (1 min, the "
        "highest seen at the start and the end) says how much else ran.\n\n"
        "| show | host + guest | wall time | CPU time | speed (show s per s) | result "
        "| load average |\n"
        "|---|---|---|---|---|---|---|\n" + line + "\n\n"
        "At nice 19 the composition gets only what the rest of the machine leaves it (a "
        "wall time several times its CPU time means the shared machine was busy): its CPU "
        "time is its own cost, about what it takes on an idle core, and live shows on the "
        "same server keep the CPU before it.\n",
    )


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--host", type=size, default=(1280, 720))
    parser.add_argument("--guest", type=size, default=(540, 960))
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        host, guest, out = folder / "host.mp4", folder / "guest.mp4", folder / "replay.mp4"
        began = time.monotonic()
        synthesise(host, *args.host, args.seconds, 128)
        synthesise(guest, *args.guest, args.seconds, 60)
        print(f"synthesised {args.seconds:.0f} s twice in {time.monotonic() - began:.0f} s")
        wall = 1_000_000.0
        half = wall + args.seconds / 2
        spec = {
            "main": str(host),
            "timeline": [[wall, 0.0, args.seconds]],
            "guest_parts": [[str(guest), wall]],
            "stage": [[wall, True, "side"], [half, True, "inset"]],
            "out": str(out),
        }
        (folder / "spec.json").write_text(json.dumps(spec))
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        await compose_in_child(folder / "spec.json")
        took = time.monotonic() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        load = max(load, os.getloadavg()[0])
        megabytes = out.stat().st_size / 1e6
    minutes = args.seconds / 60
    line = (
        f"| {minutes:g} min | {args.host[0]}x{args.host[1]} + {args.guest[0]}x{args.guest[1]} "
        f"| {took:.0f} s | {cpu:.0f} s | {args.seconds / took:.2f}x | {megabytes:.0f} MB "
        f"| {load:.1f} |"
    )
    print(line)
    if args.no_doc:
        return
    record(line)


if __name__ == "__main__":
    asyncio.run(main())
