"""What connected viewers cost the garbage collector (see appliance/room/collector.py).

The real app and Hypercorn run in this process on a free port, so its collector can be
asked directly; the viewers are websocket connections from a child process (each says
hello and stays). For each audience size: the objects the collector tracks per connected
viewer (after a full collection, against the empty room), and how long one full
collection takes with that audience in (best and worst of 3). Writes docs/perf.md.

    scripts/bench room-gc [--viewers 500,1000,2000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchserver import ROOT, free_port
from perfdoc import write_section


async def hold(url: str, origin: str, count: int) -> None:
    """The child: `count` viewers connected until standard input closes."""
    import websockets

    sockets = []
    for i in range(count):
        ws = await websockets.connect(
            url,
            origin=origin,
            compression=None,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"vitrine_viewer=v_gc_bench_{i:012d}"},
        )
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": None}))
        sockets.append(ws)
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for ws in sockets:
        await ws.close()


def tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def measure(port: int, show: int, viewers: int) -> tuple[float, float, float]:
    before = tracked()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--hold",
        str(viewers),
        "--port",
        str(port),
        "--show",
        str(show),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stdin is not None
    assert (await child.stdout.readline()).strip() == b"ready", "the viewers did not connect"
    await asyncio.sleep(2)  # their hellos handled, their state frames sent
    per_viewer = (tracked() - before) / viewers
    passes = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        passes.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.5)
    child.stdin.close()
    await child.wait()
    await asyncio.sleep(2)  # their connections closed
    return per_viewer, min(passes), max(passes)


def new_show(data: Path) -> int:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "shows",
            "create",
            "--title",
            "GC",
            "--starts-at",
            "2030-01-01T10:00",
            "--data-dir",
            str(data),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(json.loads(created.stdout)["id"])


async def run(data: Path, show: int, sizes: list[int]) -> list[str]:
    from hypercorn.asyncio import serve

    from appliance.app import create_app
    from appliance.config import load_config
    from appliance.serving import hypercorn_config

    port = free_port()
    overrides = {"storage.data_dir": str(data), "server.port": str(port)}
    config = load_config(environ={}, overrides=overrides)
    hc = hypercorn_config(config)
    hc.errorlog = None
    loop = asyncio.get_running_loop()

    def quiet(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        # Connections' tasks cancelled as the server stops are not worth a traceback.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet)
    stopping = asyncio.Event()
    server = asyncio.ensure_future(serve(create_app(config), hc, shutdown_trigger=stopping.wait))
    await asyncio.sleep(2)
    lines = []
    try:
        for viewers in sizes:
            per_viewer, best, worst = await measure(port, show, viewers)
            line = f"| {viewers} | {per_viewer:.0f} | {best:.0f} / {worst:.0f} |"
            print(line, flush=True)
            lines.append(line)
    finally:
        stopping.set()
        await server
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="500,1000,2000")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--show", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hold:
        base = f"127.0.0.1:{args.port}"
        asyncio.run(hold(f"ws://{base}/ws/shows/{args.show}", f"http://{base}", args.hold))
        return
    header = "| viewers | tracked objects per viewer | full collection ms, best / worst of 3 |"
    print(header + "\n| --- | --- | --- |", flush=True)
    data = Path(tempfile.mkdtemp(prefix="vitrine-gc-"))
    try:
        sizes = [int(v) for v in args.viewers.split(",")]
        lines = asyncio.run(run(data, new_show(data), sizes))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    body = "\n".join(
        [
            "## Live room: what viewers cost the garbage collector",
            "",
            f"`scripts/bench room-gc --viewers {args.viewers}`: the app and Hypercorn in one",
            "process, the viewers' websockets from a child process. Objects per viewer = the",
            "objects the collector tracks with the audience in, less those with the room",
            "empty, over the audience, each after a full collection. A full collection stops",
            "the event loop while it runs, which is why the serving process makes them only",
            "when the room's tick allows (appliance/room/collector.py). This process holds only",
            "the room; a serving process also holds its HTTP connections and buffers, so its",
            "passes take longer (the loadtest's 'longest GC' column).",
            "",
            header,
            "| --- | --- | --- |",
            *lines,
        ]
    )
    if not args.no_write:
        write_section("room-gc", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
