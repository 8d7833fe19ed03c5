""" "Watch from the start" of a live show (media/hls_start.py, appliance/views/api/hls_start.py)
against the real server and a real WHIP publisher: the start playlist is an EVENT playlist
of the recording, from its first fragment, growing as the show goes on, and what a client
fetches by its byte ranges decodes (PyAV) from frame 0 of the counter source, in order, at
the publisher's size."""

from __future__ import annotations

import asyncio
import io
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.conftest import LiveServer, launch, stop
from tests.media_helpers import read_counter
from tests.test_hls_http import aget, go_live

pytestmark = pytest.mark.usefixtures("loopback_candidates")

MAP = re.compile(r'#EXT-X-MAP:URI="([^"]+)",BYTERANGE="(\d+)@(\d+)"')
SEGMENT = re.compile(r"#EXTINF:([0-9.]+),\n#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = launch(tmp_path / "data", tmp_path / "server.log")  # recorded, as by default
    yield live
    stop(live)


def get_range(url: str, length: int, offset: int) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Range": f"bytes={offset}-{offset + length - 1}"}
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return r.status, r.read()


async def test_the_start_playlist_plays_the_show_from_its_first_frame(server: LiveServer) -> None:
    show_id, pc, _track = await go_live(server)
    base = f"{server.url}/hls/{show_id}"
    try:
        deadline = time.monotonic() + 30
        while True:
            got = await aget(f"{base}/start.m3u8")
            text = got.body.decode()
            if got.status == 200 and len(SEGMENT.findall(text)) >= 4:
                break
            assert got.status in (200, 404), text
            assert time.monotonic() < deadline, "no start playlist in time"
            await asyncio.sleep(0.3)
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-ENDLIST" not in text
        head = urllib.request.Request(f"{base}/start.m3u8", method="HEAD")
        with await asyncio.to_thread(urllib.request.urlopen, head, None, 30) as r:
            assert r.status == 200 and r.read() == b""
        assert got.headers["Cache-Control"] == "no-store"
        assert got.headers["Content-Type"].startswith("application/vnd.apple.mpegurl")
        uri, length, offset = MAP.findall(text)[0]
        segments = SEGMENT.findall(text)
        assert all(0 < float(d) <= 2 for d, *_ in segments)
        status, init = await asyncio.to_thread(get_range, f"{base}/{uri}", int(length), int(offset))
        assert status == 206
        media = []
        for _d, seg_length, seg_offset, seg_uri in segments:
            status, data = await asyncio.to_thread(
                get_range, f"{base}/{seg_uri}", int(seg_length), int(seg_offset)
            )
            assert status == 206 and len(data) == int(seg_length)
            media.append(data)
        with av.open(io.BytesIO(init + b"".join(media))) as container:
            codecs = {s.type: s.codec_context.name for s in container.streams}
            frames = list(container.decode(container.streams.video[0]))
        counters = [read_counter(f) for f in frames]
        assert codecs == {"video": "h264", "audio": "aac"}
        assert (frames[0].width, frames[0].height) == (320, 180)  # as sent, not re-encoded
        assert counters[0] == 0, counters[:5]  # the show's very first frame
        assert counters == sorted(counters) and len(counters) > 30
        assert counters[-1] + 1 - len(counters) <= 2  # nothing lost in between

        # The playlist grows at its end; what it listed stays as it was (EVENT).
        await asyncio.sleep(2)
        later = (await aget(f"{base}/start.m3u8")).body.decode()
        assert SEGMENT.findall(later)[: len(segments)] == segments
        assert len(SEGMENT.findall(later)) > len(segments)

        for bad in ("start/part-1.mkv", "start/..%2Fpart-001.mp4", "start/part-999.mp4"):
            with pytest.raises(urllib.error.HTTPError) as err:
                await asyncio.to_thread(urllib.request.urlopen, f"{base}/{bad}", None, 30)
            # (the encoded slash never reaches the view: another route's 405)
            err.value.close()
            assert err.value.code in (404, 405), bad
    finally:
        await pc.close()
    assert (await aget(f"{server.url}/hls/999999/start.m3u8")).status == 404
    head = urllib.request.Request(f"{server.url}/hls/999999/start.m3u8", method="HEAD")
    with pytest.raises(urllib.error.HTTPError) as err:
        await asyncio.to_thread(urllib.request.urlopen, head, None, 30)
    err.value.close()
    assert err.value.code == 404
