"""Smoke test of the container image, run by scripts/image-test after it builds the image
(not collected by pytest: it needs podman and an image).

Everything listens on 127.0.0.1 (host network, server.host 127.0.0.1, media candidates on
loopback). Checks: the user is not root and PID 1 is tini; /healthz and the image's own
HEALTHCHECK on a non-default port; create-admin --password-stdin; seed-demo; a WHIP
publish and a WHEP viewer through the container, served by the relay worker processes the
default starts (one per core); `podman stop` with viewers connected exits
0 within 5 s; the data (admin, demo, show) is still there after the restart; a root-owned
host folder on /data stops the start with one line.
    python -m tests.image_smoke IMAGE [--perf]
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aiortc import RTCPeerConnection

from media.aiortc_glue import set_host_addresses
from media.workers.capacity import workers_for
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, make_viewer, read_counter

PODMAN = shlex.split(os.environ.get("PODMAN", "podman"))
ULIMITS = shlex.split(os.environ.get("PODMAN_ULIMITS", ""))
PASSWORD = "smoke-test-password-1"
VIEWERS = 3  # that decode frames; --perf adds idle ones up to PERF_VIEWERS
PERF_VIEWERS = 50


def podman(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*PODMAN, *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode(errors="replace"), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace"), exc.headers


def wait_healthy(base: str, name: str, limit: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if http("GET", f"{base}/healthz")[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        assert state == "running", f"container {state}:\n{podman('logs', name).stderr}"
        time.sleep(0.2)
    raise AssertionError(f"no /healthz within {limit} s:\n{podman('logs', name).stderr}")


def step(text: str) -> None:
    print(f"  ok: {text}", flush=True)


async def media_and_stop(base: str, name: str, show: dict, viewers: int) -> float:
    """Publishes into the container, watches out of it, then stops it with `viewers`
    still connected: returns the seconds `podman stop` took. The first VIEWERS check the
    frames they decode; the others only connect."""
    set_host_addresses(["127.0.0.1"])
    pcs: list[RTCPeerConnection] = []
    try:
        pub, offer = await make_publisher(CounterVideoTrack(first=1000))
        pcs.append(pub)
        status, sdp, _ = await asyncio.to_thread(
            http,
            "POST",
            f"{base}/whip/{show['id']}",
            offer.encode(),
            {"Content-Type": "application/sdp", "Authorization": f"Bearer {show['stream_key']}"},
        )
        assert status == 201, (status, sdp)
        await answer(pub, sdp)
        counters: list[int] = []
        for n in range(viewers):
            viewer, offer, tracks = await make_viewer()
            pcs.append(viewer)
            status, sdp, _ = await asyncio.to_thread(
                http,
                "POST",
                f"{base}/whep/{show['id']}",
                offer.encode(),
                {"Content-Type": "application/sdp"},
            )
            assert status == 201, (status, sdp)
            await answer(viewer, sdp)
            if n >= VIEWERS:
                continue
            deadline = time.monotonic() + 20
            while not any(t.kind == "video" for t in tracks):
                assert time.monotonic() < deadline, "no video track"
                await asyncio.sleep(0.05)
            video = next(t for t in tracks if t.kind == "video")
            frames = [await asyncio.wait_for(video.recv(), 20) for _ in range(10)]
            counters.append(read_counter(frames[-1]))
        assert all(1000 <= c < 1000 + 30 * 60 for c in counters), counters
        deadline = time.monotonic() + 60
        while sum(pc.connectionState == "connected" for pc in pcs) < viewers + 1:
            assert time.monotonic() < deadline, [pc.connectionState for pc in pcs]
            await asyncio.sleep(0.2)
        step(
            f"WHIP publish and {viewers} WHEP viewers through the container "
            f"(frames {counters} decoded)"
        )
        # media.workers is -1 by default: one relay worker process per core for the
        # host's relay. A guest's relay starts as many when a guest joins: none here.
        expected = workers_for(-1, os.cpu_count() or 1)
        listed = podman("top", name, "args").stdout.splitlines()
        workers = [line for line in listed if "media.workers.worker" in line]
        assert len(workers) == expected, (expected, listed)
        step(f"relay workers by default: {expected} (media.workers -1, one per core)")
        started = time.monotonic()
        await asyncio.to_thread(podman, "stop", "--time", "10", name)
        return time.monotonic() - started
    finally:
        for pc in pcs:
            await pc.close()
        set_host_addresses([])


def main(image: str, perf: bool) -> int:
    smoke_started = time.monotonic()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tag = f"vitrine-smoke-{os.getpid()}"
    podman("volume", "create", tag)
    common = ["--network", "host", *ULIMITS]
    env = ["-e", "VITRINE_SERVER_HOST=127.0.0.1", "-e", f"VITRINE_SERVER_PORT={port}",
           "-e", "VITRINE_MEDIA_HOST_ADDRESSES=127.0.0.1",
           # every viewer here comes from 127.0.0.1
           "-e", "VITRINE_LIMITS_WHEP_SESSIONS_PER_ADDRESS=0"]  # fmt: skip
    try:
        podman("run", "-d", "--name", tag, *common, *env, "-v", f"{tag}:/data", image)
        first = wait_healthy(base, tag)
        step(f"/healthz on port {port} after {first:.1f} s")

        uid = podman("exec", tag, "id", "-u").stdout.strip()
        assert uid != "0" and uid.isdigit(), uid
        init = podman("exec", tag, "cat", "/proc/1/comm").stdout.strip()
        assert init == "tini", init
        step(f"runs as uid {uid}, PID 1 is {init}")

        health = podman("healthcheck", "run", tag, check=False)
        assert health.returncode == 0, f"HEALTHCHECK on port {port}: {health.stdout}{health.stderr}"
        state = podman("inspect", "--format", "{{.State.Health.Status}}", tag).stdout.strip()
        assert state == "healthy", state
        step(f"the image's HEALTHCHECK says {state} on port {port}")

        made = podman(
            "exec", "-i", tag, "vitrine", "create-admin", "--email", "smoke@example.com",
            "--password-stdin", stdin=PASSWORD + "\n",
        )  # fmt: skip
        assert "created admin smoke@example.com" in made.stdout, made.stdout
        step("create-admin --password-stdin")

        demo = podman("exec", tag, "vitrine", "seed-demo").stdout
        assert "created the demo shop" in demo, demo
        status, page, _ = http("GET", f"{base}/")
        assert status == 200 and "Autumn essentials, live" in page, status
        step("seed-demo: the home page lists the demo shows")

        created = podman(
            "exec", tag, "vitrine", "shows", "create", "--title", "Smoke test show",
            "--starts-at", "2030-01-01T10:00",
        )  # fmt: skip
        show = json.loads(created.stdout)
        viewers = PERF_VIEWERS if perf else VIEWERS
        stop_seconds = asyncio.run(media_and_stop(base, tag, show, viewers))
        code = podman("inspect", "--format", "{{.State.ExitCode}}", tag).stdout.strip()
        assert code == "0", f"exit code {code}:\n{podman('logs', tag).stderr}"
        assert stop_seconds < 5, f"podman stop took {stop_seconds:.1f} s"
        step(f"podman stop with {viewers} viewers and a publisher: exit 0 in {stop_seconds:.1f} s")

        podman("start", tag)
        wait_healthy(base, tag)
        again = podman(
            "exec", "-i", tag, "vitrine", "create-admin", "--email", "smoke@example.com",
            "--password-stdin", stdin=PASSWORD + "\n", check=False,
        )  # fmt: skip
        assert again.returncode == 1 and "already exists" in again.stderr, again
        listed = podman("exec", tag, "vitrine", "shows", "list").stdout
        titles = {json.loads(line)["title"] for line in listed.splitlines()}
        assert {"Smoke test show", "Autumn essentials, live"} <= titles, titles
        step("after a restart: the admin, the demo and the show are still there")
        podman("stop", "--time", "10", tag)

        with tempfile.TemporaryDirectory() as folder:
            os.chmod(folder, 0o755)  # root's, like a folder made by `mkdir` as root
            refused = podman(
                "run", "--rm", *common, *env, "-v", f"{folder}:/data", image, check=False
            )
            lines = [line for line in refused.stderr.splitlines() if "level=" not in line]
            assert refused.returncode != 0, refused
            assert "Traceback" not in refused.stderr, refused.stderr
            assert len(lines) == 1 and "/data" in lines[0], lines
            step(f"a root-owned /data: exit {refused.returncode}, {lines[0]!r}")
            assert not list(Path(folder).iterdir()), "wrote into a folder it may not write"
    finally:
        podman("rm", "--force", "--time", "0", tag, check=False)
        podman("volume", "rm", "--force", tag, check=False)

    size = int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())
    print(f"image {image}: {size / 1e6:.0f} MB; stop with {viewers} viewers {stop_seconds:.1f} s")
    if perf:
        write_perf(image, size, first, stop_seconds, time.monotonic() - smoke_started)
    return 0


def write_perf(image: str, size: int, first: float, stop_seconds: float, smoke: float) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts" / "benchmarks"))
    from perfdoc import write_section

    layers = podman("history", "--format", "{{.Size}}\t{{.CreatedBy}}", image).stdout
    biggest = sorted(
        (line.split("\t", 1) for line in layers.splitlines() if "\t" in line),
        key=lambda row: -_bytes(row[0]),
    )[:3]
    rows = "\n".join(f"| {size_} | `{what.strip()[:70]}` |" for size_, what in biggest)
    body = f"""## Container image

`scripts/image-test --local-base --perf` (podman with runc; the base is Debian bookworm's
Python 3.11 made with mmdebstrap, as CI does, standing in for python:3.11-slim).

- Image size: **{size / 1e6:.0f} MB**. Most of it is PyAV with its own FFmpeg (about 104 MB,
  needed to record shows and make replays), Babel's locale data (33 MB), cryptography
  (16 MB) and the base's Python and pip.
- Time in CI: {os.environ.get("BASE_SECONDS", "?")} s to make the base (once per machine;
  0 when it exists), {os.environ.get("BUILD_SECONDS", "?")} s to build the image,
  {smoke:.0f} s for the smoke test (with {PERF_VIEWERS} viewers; CI's run has {VIEWERS}).
- First start to a healthy `/healthz` on a new volume: {first:.1f} s.
- `podman stop` with a publisher and {PERF_VIEWERS} WHEP viewers connected: {stop_seconds:.1f} s,
  exit code 0 (the limit the smoke test enforces is 5 s).

Largest layers:

| size | step |
| --- | --- |
{rows}"""
    write_section("image", body)


def _bytes(text: str) -> float:
    units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * units.get(unit, 1)
    except ValueError:
        return 0.0


if __name__ == "__main__":
    args = sys.argv[1:]
    sys.exit(main(args[0], "--perf" in args[1:]))
