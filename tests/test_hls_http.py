"""The HLS rendition over HTTP from a real server (`vitrine serve`) with a real WHIP
publisher: a client reads the playlist, follows it with blocking reloads, fetches the init
segment and the parts, and decodes the publisher's counter-stamped frames with PyAV, in
order and at the publisher's size (no re-encoding); blocking reload holds a request until
its part exists; bad parameters are a 400; cache and CORS headers fit a CDN."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, read_counter

pytestmark = pytest.mark.usefixtures("loopback_candidates")

PART = re.compile(r'#EXT-X-PART:DURATION=[0-9.]+,URI="([^"]+)"')
MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
SEGMENT = re.compile(r"#EXTINF:[0-9.]+,\n(\S+)")
MSN = re.compile(r"#EXT-X-MEDIA-SEQUENCE:(\d+)")


@dataclass
class Got:
    status: int
    body: bytes
    headers: Any
    took: float


def get(url: str) -> Got:
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return Got(r.status, r.read(), r.headers, time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Got(exc.code, exc.read(), exc.headers, time.monotonic() - started)


async def aget(url: str) -> Got:
    return await asyncio.to_thread(get, url)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(tmp_path / "data", tmp_path / "server.log", {"VITRINE_MEDIA_RECORD": "false"})
    yield live
    stop(live)


async def go_live(server: LiveServer) -> tuple[int, Any, CounterVideoTrack]:
    created = json.loads(
        server.cli("shows", "create", "--title", "HLS", "--starts-at", "2030-01-01T10:00")
    )
    track = CounterVideoTrack(width=320, height=180, fps=30)
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
    return int(created["id"]), pc, track


async def first_playlist(base: str, limit: float = 20.0) -> str:
    deadline = time.monotonic() + limit
    while True:
        got = await aget(f"{base}/index.m3u8")
        if got.status == 200:
            return got.body.decode()
        assert got.status == 404, got.body
        assert time.monotonic() < deadline, "no playlist in time"
        await asyncio.sleep(0.2)


async def test_a_client_follows_the_playlist_and_decodes_the_publishers_frames(
    server: LiveServer,
) -> None:
    show_id, pc, track = await go_live(server)
    base = f"{server.url}/hls/{show_id}"
    try:
        text = await first_playlist(base)
        got = await aget(f"{base}/index.m3u8")
        assert got.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert got.headers["Cache-Control"] == "public, max-age=1"
        assert got.headers["Access-Control-Allow-Origin"] == "*"
        assert "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in text

        init = await aget(f"{base}/{MAP.findall(text)[-1]}")
        assert init.status == 200 and init.body[4:8] == b"ftyp"
        assert "immutable" in init.headers["Cache-Control"]
        # A player joining now: from the newest independent part on, then each next part
        # as the preload hint names it (held by the server until it exists).
        parts = PART.findall(text)
        uris = [parts[-1]]
        fetched: list[bytes] = []
        decode_times: list[tuple[float, bytes]] = []
        hint = HINT.findall(text)[0]
        for uri in uris:
            part = await aget(f"{base}/{uri}")
            assert part.status == 200, uri
            fetched.append(part.body)
        for _ in range(12):  # about 3.6 s of parts, each asked for before it exists
            part = await aget(f"{base}/{hint}")
            assert part.status == 200, hint
            assert "immutable" in part.headers["Cache-Control"]
            fetched.append(part.body)
            decode_times.append((time.monotonic(), part.body))
            number = int(re.findall(r"p(\d+)\.m4s", hint)[0])
            hint = hint.replace(f"p{number}.m4s", f"p{number + 1}.m4s")
        published_at = track._start
        assert published_at is not None
        # A player without LL-HLS reads whole segments, from the same window.
        whole = SEGMENT.findall((await aget(f"{base}/index.m3u8")).body.decode())[-1]
        segment = await aget(f"{base}/{whole}")
        assert segment.status == 200 and segment.body[4:8] == b"moof"
        assert "immutable" in segment.headers["Cache-Control"]
    finally:
        await pc.close()

    container = av.open(io.BytesIO(init.body + b"".join(fetched)))
    codecs = {s.type: s.codec_context.name for s in container.streams}
    counters, sizes, times = [], set(), []
    for frame in container.decode(container.streams.video[0]):
        counters.append(read_counter(frame))
        sizes.add((frame.width, frame.height))
        times.append(float(frame.pts * frame.time_base))
    container.close()
    assert codecs == {"video": "h264", "audio": "aac"}
    assert sizes == {(320, 180)}  # the publisher's own size: no re-encoding
    assert len(counters) >= 60
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    assert counters[-1] - counters[0] + 1 - len(counters) <= 3
    # At the publisher's frame rate: 30 frames a second of media time.
    steps = sorted(b - a for a, b in itertools.pairwise(times))
    assert abs(steps[len(steps) // 2] - 1 / 30) < 0.005, steps[len(steps) // 2]
    # Publish-to-fetch delay of the last part's last frame: under 3 s on loopback.
    delay = decode_times[-1][0] - (published_at + counters[-1] / 30)
    assert 0 < delay < 3.0, delay


async def test_blocking_reload_holds_the_request_until_the_part_exists(
    server: LiveServer,
) -> None:
    show_id, pc, _track = await go_live(server)
    base = f"{server.url}/hls/{show_id}"
    try:
        text = await first_playlist(base)
        msn = int(MSN.findall(text)[0]) + len(SEGMENT.findall(text))  # the open segment
        newest = text.rsplit("#EXT-X-PROGRAM-DATE-TIME", 1)[1]
        next_part = len(PART.findall(newest))
        got = await aget(f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={next_part}")
        assert got.status == 200
        assert got.headers["Cache-Control"] == "no-store"
        assert 0.02 < got.took < 3.0, got.took  # held until the part was written
        held = got.body.decode()
        assert len(PART.findall(held)) > len(PART.findall(text)) or held.count("#EXTINF") > (
            text.count("#EXTINF")
        )

        for query in ("_HLS_msn=x", "_HLS_part=1", "_HLS_msn=-1", f"_HLS_msn={msn + 50}"):
            bad = await aget(f"{base}/index.m3u8?{query}")
            assert bad.status == 400, query
            assert b"Traceback" not in bad.body
        assert (await aget(f"{base}/nonsense/p1.m4s")).status == 404
        assert (await aget(f"{server.url}/hls/999/index.m3u8")).status == 404
    finally:
        await pc.close()


async def test_pages_point_the_player_at_a_cdn_and_allow_it(tmp_path: Path) -> None:
    from appliance.app import create_app
    from appliance.config import load_config

    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "media.hls_base_url": "https://cdn.example.com",
            "media.hls_only": "true",
        },
    )
    app = create_app(config)
    async with app.test_app():
        svc = app.extensions["vitrine"]
        from appliance.catalog import shows

        show_id = await shows.create_show(
            svc.db, shows.ShowData("CDN show", "", int(time.time()) + 3600, 60, None)
        )
        response = await app.test_client().get(f"/shows/{show_id}")
        page = await response.get_data(as_text=True)
        assert f'data-hls-url="https://cdn.example.com/hls/{show_id}/index.m3u8"' in page
        assert 'data-hls-only="1"' in page
        csp = response.headers["Content-Security-Policy"]
        assert "connect-src 'self' https://cdn.example.com" in csp
        assert "media-src 'self' blob: https://cdn.example.com" in csp
        # Nothing live: the rendition is a 404, answered without the app's cookie Vary.
        missing = await app.test_client().get(f"/hls/{show_id}/index.m3u8")
        assert missing.status_code == 404
        assert missing.headers["Vary"] == "Origin"


async def test_over_the_budget_requests_get_503_and_the_show_goes_on(tmp_path: Path) -> None:
    """With a budget of 20 answers a second, a burst of 120 concurrent playlist and part
    requests: some 503 with Retry-After (never a 500), the rest 200; the publisher stays
    connected, the rendition keeps growing, /metrics counts the shed requests, and after
    the burst requests are answered again. With 3 places for held requests, 8 requests
    for a part not yet written: 3 held and answered, 5 refused at once."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.test_metrics import TOKEN, samples, value

    server = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {
            "VITRINE_MEDIA_RECORD": "false",
            "VITRINE_MEDIA_HLS_ANSWERS_PER_SECOND": "20",
            "VITRINE_MEDIA_HLS_HELD_REQUESTS": "3",
            "VITRINE_METRICS_TOKEN": TOKEN,
        },
    )
    try:
        show_id, pc, _track = await go_live(server)
        base = f"{server.url}/hls/{show_id}"
        try:
            text = await first_playlist(base)
            epoch_part = PART.findall(text)[-1]
            await asyncio.sleep(1.2)  # the bucket full again
            urls = [f"{base}/index.m3u8", f"{base}/{epoch_part}"] * 60
            began = time.monotonic()
            with ThreadPoolExecutor(len(urls)) as pool:
                burst = await asyncio.gather(
                    *(asyncio.get_running_loop().run_in_executor(pool, get, u) for u in urls)
                )
            statuses = [got.status for got in burst]
            assert set(statuses) == {200, 503}, statuses
            # A second's worth at once, then 20 a second while the burst lasted.
            most = 20 + 20 * (time.monotonic() - began)
            assert 10 <= statuses.count(200) <= most, (statuses, most)
            for got in burst:
                if got.status == 503:
                    assert got.headers["Retry-After"] == "1"
                    assert got.headers["Cache-Control"] == "no-store"
                    assert b"Traceback" not in got.body

            await asyncio.sleep(1.5)  # after the burst: answered again, the show still live
            after = await aget(f"{base}/index.m3u8")
            assert after.status == 200
            assert after.body.decode().count("#EXT-X-PART:") and after.body != text.encode()
            assert pc.connectionState == "connected"
            scraped = await asyncio.to_thread(get_with_token, f"{server.url}/metrics", TOKEN)
            found = samples(scraped)
            assert value(found, "vitrine_publishers", show=str(show_id), relay="host") == 1
            assert value(found, "vitrine_hls_shed_total", reason="rate") == statuses.count(503)
            assert value(found, "vitrine_hls_shed_total", reason="held") == 0

            await asyncio.sleep(1.2)
            newest = (await aget(f"{base}/index.m3u8")).body.decode()
            hint = HINT.findall(newest)[0]
            number = int(hint.rsplit("/p", 1)[1].split(".")[0])
            ahead = hint.replace(f"/p{number}.", f"/p{number + 2}.")  # >= 2 parts away
            with ThreadPoolExecutor(8) as pool:
                waited = await asyncio.gather(
                    *(
                        asyncio.get_running_loop().run_in_executor(pool, get, f"{base}/{ahead}")
                        for _ in range(8)
                    )
                )
            held = sorted(got.status for got in waited)
            assert held == [200] * 3 + [503] * 5, held
            assert all(got.took > 0.1 for got in waited if got.status == 200)
            found = samples(await asyncio.to_thread(get_with_token, f"{server.url}/metrics", TOKEN))
            assert value(found, "vitrine_hls_shed_total", reason="held") == 5
        finally:
            await pc.close()
    finally:
        stop(server)


def get_with_token(url: str, token: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as r:
        return str(r.read().decode())
