"""Publishing over WHIP and watching over WHEP, against the real server, with real
aiortc peers on 127.0.0.1: the relay forwards the publisher's own encoded video."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from tests.conftest import LiveServer
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, make_viewer, read_counter


@dataclass
class Reply:
    status: int
    body: str
    headers: Any  # case-insensitive, like http.client.HTTPMessage


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Reply:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return Reply(r.status, r.read().decode(errors="replace"), r.headers)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read().decode(errors="replace"), exc.headers)


async def ahttp(*args, **kwargs) -> Reply:
    return await asyncio.to_thread(http, *args, **kwargs)


pytestmark = pytest.mark.usefixtures("loopback_candidates")


@dataclass
class Show:
    server: LiveServer
    id: int
    key: str

    @property
    def whip(self) -> str:
        return f"{self.server.url}/whip/{self.id}"

    @property
    def whep(self) -> str:
        return f"{self.server.url}/whep/{self.id}"

    def status(self) -> dict:
        return json.loads(http("GET", f"{self.server.url}/api/shows/{self.id}/status").body)


@pytest.fixture
def show(live_server: LiveServer) -> Show:
    created = json.loads(
        live_server.cli(
            "shows", "create", "--title", "Live test", "--starts-at", "2030-01-01T10:00"
        )
    )
    return Show(live_server, created["id"], created["stream_key"])


async def publish(show: Show, track: CounterVideoTrack) -> tuple[RTCPeerConnection, str]:
    pc, offer = await make_publisher(track)
    reply = await ahttp(
        "POST",
        show.whip,
        offer.encode(),
        {"Content-Type": "application/sdp", "Authorization": f"Bearer {show.key}"},
    )
    assert reply.status == 201, reply.body
    assert reply.headers["Content-Type"] == "application/sdp"
    await answer(pc, reply.body)
    return pc, reply.headers["Location"]


async def watch(show: Show) -> tuple[RTCPeerConnection, str, list]:
    pc, offer, tracks = await make_viewer()
    reply = await ahttp("POST", show.whep, offer.encode(), {"Content-Type": "application/sdp"})
    assert reply.status == 201, reply.body
    await answer(pc, reply.body)
    return pc, reply.headers["Location"], tracks


def replay_status(show: Show) -> str | None:
    with sqlite3.connect(show.server.data_dir / "vitrine.sqlite3") as conn:
        row = conn.execute("SELECT status FROM replays WHERE show_id = ?", (show.id,)).fetchone()
    return None if row is None else str(row[0])


def recorded_video_frames(path: Path) -> int:
    import av

    try:
        with av.open(str(path)) as container:
            return sum(1 for p in container.demux(container.streams.video[0]) if p.size)
    except (OSError, av.error.FFmpegError):
        return 0  # not written yet


async def until(check, limit: float = 10.0) -> None:
    deadline = time.monotonic() + limit
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.1)


async def frames(tracks: list, n: int) -> list:
    video = next(t for t in tracks if t.kind == "video")
    return [await asyncio.wait_for(video.recv(), 10) for _ in range(n)]


@pytest.fixture
async def cleanup() -> AsyncIterator[list[RTCPeerConnection]]:
    pcs: list[RTCPeerConnection] = []
    yield pcs
    for pc in pcs:
        await pc.close()


async def test_publish_and_watch_the_publishers_own_video(show: Show, cleanup: list) -> None:
    track = CounterVideoTrack(640, 360, 30)
    pub, location = await publish(show, track)
    cleanup.append(pub)
    assert location.startswith(f"/whip/{show.id}/")
    await until(lambda: show.status()["publishing"])
    assert show.status()["status"] == "live"

    viewers = [await watch(show) for _ in range(3)]
    cleanup.extend(pc for pc, _, _ in viewers)
    await until(lambda: show.status()["viewers"] == 3)
    decoded = await asyncio.gather(*(frames(tracks, 45) for _, _, tracks in viewers))
    for got in decoded:
        assert {(f.width, f.height) for f in got} == {(640, 360)}
        counters = [read_counter(f) for f in got]
        assert counters == sorted(counters) and len(set(counters)) == len(counters), counters
        assert counters[-1] <= track.count
        rate = (counters[-1] - counters[0]) / (got[-1].time - got[0].time)
        assert 27 <= rate <= 33, rate  # the publisher's 30 fps, within 10 %


async def test_publisher_takeover_keeps_viewers(show: Show, cleanup: list) -> None:
    first = CounterVideoTrack(640, 360, 30)
    pub1, _ = await publish(show, first)
    cleanup.append(pub1)
    await until(lambda: show.status()["publishing"])
    viewer, _, tracks = await watch(show)
    cleanup.append(viewer)
    before = [read_counter(f) for f in await frames(tracks, 20)]
    assert before == sorted(before)

    second = CounterVideoTrack(640, 360, 30, first=50_000)  # told apart by their numbers
    pub2, _ = await publish(show, second)
    cleanup.append(pub2)
    await until(lambda: pub1.connectionState == "closed" or pub1.connectionState == "failed", 15)
    after = [read_counter(f) for f in await frames(tracks, 60)]
    assert any(n >= 50_000 for n in after), after
    new = [n for n in after if n >= 50_000]
    assert new == sorted(new)
    assert show.status()["viewers"] == 1 and show.status()["status"] == "live"


async def test_viewer_leaves_and_show_ends(show: Show, cleanup: list) -> None:
    pub, _ = await publish(show, CounterVideoTrack(320, 180, 15))
    cleanup.append(pub)
    await until(lambda: show.status()["publishing"])
    viewer, whep_location, _ = await watch(show)
    cleanup.append(viewer)
    await until(lambda: show.status()["viewers"] == 1)
    reply = await ahttp("DELETE", show.server.url + whep_location)
    assert reply.status == 200
    assert (await ahttp("DELETE", show.server.url + whep_location)).status == 404
    await until(lambda: show.status()["viewers"] == 0)
    # It is recorded as it goes, in the data directory (until its replay is made)…
    recording = show.server.data_dir / "recordings" / f"show-{show.id}" / "part-001.mp4"
    await until(lambda: recorded_video_frames(recording) >= 1)
    # The publisher drops without a word: the show stays live for the grace period…
    await pub.close()
    await until(lambda: not show.status()["publishing"])
    assert show.status()["status"] == "live"
    # …and ends when nobody comes back (grace is 3 s in tests).
    await until(lambda: show.status()["status"] == "ended", 15)
    # …and its replay is made and published by itself, served with ranges.
    await until(lambda: replay_status(show) == "ready", 20)
    page = (await ahttp("GET", f"{show.server.url}/shows/{show.id}")).body
    assert f'src="/replays/{show.id}.mp4"' in page
    video = f"{show.server.url}/replays/{show.id}.mp4"
    reply = await ahttp("GET", video, None, {"Range": "bytes=0-99"})
    assert reply.status == 206 and reply.headers["Content-Type"] == "video/mp4"
    assert reply.headers["Content-Range"].startswith("bytes 0-99/")
    assert reply.headers["Cache-Control"] == "public, max-age=3600"
    poster = await ahttp("GET", f"{show.server.url}/replays/{show.id}.jpg")
    assert poster.status == 200 and poster.headers["Content-Type"] == "image/jpeg"
    for missing in ("/replays/4242.mp4", "/replays/..%2Fvitrine.sqlite3", "/replays/1.mp4/.."):
        assert (await ahttp("GET", show.server.url + missing)).status == 404
    # Unpublished, it is gone for viewers.
    with sqlite3.connect(show.server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute("UPDATE replays SET published = 0")
    assert (await ahttp("GET", video)).status == 404
    reply = await ahttp(
        "POST",
        show.whip,
        b"v=0",
        {"Content-Type": "application/sdp", "Authorization": f"Bearer {show.key}"},
    )
    assert reply.status == 409


async def test_join_leave_cycles_leak_nothing(show: Show, cleanup: list) -> None:
    pub, _ = await publish(show, CounterVideoTrack(320, 180, 15))
    cleanup.append(pub)
    await until(lambda: show.status()["publishing"])
    pid = show.server.process.pid

    def resources() -> tuple[int, int]:
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        threads = int(next(line for line in status if line.startswith("Threads:")).split()[1])
        return fds, threads

    async def cycle(connect: bool) -> None:
        pc, offer, _ = await make_viewer()
        reply = await ahttp("POST", show.whep, offer.encode(), {"Content-Type": "application/sdp"})
        assert reply.status == 201, reply.body
        if connect:
            await answer(pc, reply.body)
            deadline = time.monotonic() + 10
            while pc.connectionState != "connected":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert (await ahttp("DELETE", show.server.url + reply.headers["Location"])).status == 200
        await pc.close()

    for i in range(10):  # warm up: thread pools and caches reach their size
        await cycle(connect=i % 2 == 0)
    fds_before, threads_before = resources()
    for i in range(200):
        await cycle(connect=i % 10 == 0)
    await until(lambda: show.status()["viewers"] == 0)
    await asyncio.sleep(1)
    fds_after, threads_after = resources()
    assert fds_after <= fds_before + 3, (fds_before, fds_after)
    assert threads_after <= threads_before + 2, (threads_before, threads_after)
