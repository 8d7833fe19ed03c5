"""docs/media.md's nginx caching configuration, tested: Debian's nginx, started here with
the block the doc shows (only its cache path, listen address and upstream port changed),
in front of a real `vitrine serve` with a real WHIP publisher. Two hundred concurrent
LL-HLS clients follow the show through nginx (plain playlist, init segment, then blocking
playlist reloads and the preload hint's part, round after round, as hls.js does), and
Vitrine sees about one request per part: nginx's upstream log says which requests went to
Vitrine, and Vitrine's own /metrics counter of HLS answers agrees. Every client got the
same bytes as a direct fetch from Vitrine. The same block's feed location: two hundred
readers long-poll the live room's feed through nginx while a socket viewer chats; each
reads every message in order, and Vitrine sees about one request per tick."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import ROOT, LiveServer, free_port, launch, stop
from tests.test_hls_http import HINT, MAP, MSN, aget, first_playlist, go_live
from tests.test_room import Room

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
)
pytestmark = [
    pytest.mark.skipif(
        NGINX is None,
        reason="nginx is not installed (apt-get install nginx-light; .ci/run installs it)",
    ),
    pytest.mark.usefixtures("loopback_candidates"),
]

CLIENTS = 200
ROUNDS = 8  # parts each client follows with blocking requests: about 2.4 s of show
TOKEN = "nginx-test-metrics-token"
EXTINF = re.compile(r"^#EXTINF:", re.M)
PART_LINE = re.compile(r"^#EXT-X-PART:", re.M)
HLS_ANSWERS = re.compile(r'^vitrine_http_requests_total\{route="hls",status="[^"]+"\} (\S+)$', re.M)


def documented_block() -> str:
    """The nginx block under docs/media.md's "A CDN or a caching nginx in front"."""
    text = (ROOT / "docs" / "media.md").read_text()
    section = re.search(r"^### A CDN or a caching nginx in front\n(.*?)(?=^#)", text, re.M | re.S)
    assert section, "docs/media.md has no section 'A CDN or a caching nginx in front'"
    block = re.search(r"^```nginx\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "docs/media.md's CDN section has no ```nginx block"
    return block.group(1)


def replace(text: str, pattern: str, replacement: str, once: bool = True) -> str:
    result, count = re.subn(pattern, replacement, text, flags=re.M)
    assert count == 1 if once else count >= 1, f"the documented nginx block and {pattern!r}"
    return result


def nginx_conf(
    tmp: Path,
    port: int,
    upstream: str,
    *,
    workers: int = 1,
    connections: int = 4096,
    log_hits: bool = True,
) -> str:
    """The documented block, made to run here, inside a minimal main configuration.
    `log_hits` False: the access log has only the requests that went to Vitrine (the
    benchmark's tens of thousands of requests a second are not all written down)."""
    block = documented_block()
    block = replace(block, r"(proxy_cache_path\s+)/\S+", rf"\g<1>{tmp}/cache")
    block = replace(block, r"^(\s*)listen\s+[^;]+;", rf"\g<1>listen 127.0.0.1:{port};")
    upstream_line = f"proxy_pass {upstream};"
    block = replace(block, r"proxy_pass\s+http://127\.0\.0\.1:8000;", upstream_line, once=False)
    assert not re.search(r"^\s*ssl_", block, re.M), "ssl_* lines left uncommented in the doc"
    temp = "\n".join(
        f"    {kind}_temp_path {tmp}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Run as root (CI), the workers would otherwise be `nobody` and could not read the
    # private temporary directory.
    user = "user root;\n" if os.geteuid() == 0 else ""
    only_origin = "" if log_hits else " if=$upstream_addr"
    return f"""{user}worker_processes {workers};
worker_rlimit_nofile {2 * connections + 100};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
{temp}
    log_format upstream '$request_uri $status $upstream_cache_status "$upstream_addr" '
                        '$msec $request_time';
    access_log {tmp}/access.log upstream{only_origin};
{block}
}}
"""


@dataclass
class Front:
    port: int
    vitrine: LiveServer
    log: Path  # nginx's access log: one line per client request, upstream address if any
    errors: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    vitrine = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {"VITRINE_MEDIA_RECORD": "false", "VITRINE_METRICS_TOKEN": TOKEN},
    )
    here = tmp_path / "nginx"
    here.mkdir()
    port = free_port()
    conf = here / "nginx.conf"
    conf.write_text(nginx_conf(here, port, vitrine.url))
    assert NGINX is not None
    errors = here / "error.log"
    process = subprocess.Popen(
        [NGINX, "-p", str(here), "-c", str(conf), "-e", str(errors), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx exited: {errors.read_text()}"
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/hls/0/index.m3u8", timeout=2)
            except urllib.error.HTTPError:
                break  # nginx answers (Vitrine's 404 through it)
            except OSError:
                assert time.monotonic() < deadline, f"nginx did not start: {errors.read_text()}"
                time.sleep(0.05)
            else:
                break
        yield Front(port, vitrine, here / "access.log", errors)
    finally:
        process.terminate()
        process.wait(timeout=10)
        stop(vitrine)


async def fetch(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    """One GET over its own connection (HTTP/1.0: the body runs to the end of the stream)."""
    async with asyncio.timeout(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: cdn.example.com\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def next_part(text: str) -> tuple[int, int, str]:
    """The part a player asks for next: its segment and index there (the blocking
    reload's _HLS_msn and _HLS_part) and its URI (the preload hint)."""
    msn = int(MSN.findall(text)[0]) + len(EXTINF.findall(text))
    open_segment = text.rsplit("#EXTINF:", 1)[-1] if "#EXTINF:" in text else text
    return msn, len(PART_LINE.findall(open_segment)), HINT.findall(text)[0]


@dataclass
class Viewer:
    hashes: dict[str, str] = field(default_factory=dict)  # URI -> sha256 of the bytes got
    lengths: dict[str, int] = field(default_factory=dict)
    waits: list[float] = field(default_factory=list)  # seconds each part took to arrive


async def follow(port: int, base: str, viewer: Viewer) -> None:
    status, _, body = await fetch(port, f"{base}/index.m3u8")
    assert status == 200, body
    text = body.decode()
    init = MAP.findall(text)[-1]
    status, _, data = await fetch(port, f"{base}/{init}")
    assert status == 200 and data[4:8] == b"ftyp"
    viewer.hashes[init], viewer.lengths[init] = hashlib.sha256(data).hexdigest(), len(data)
    for _ in range(ROUNDS):
        msn, part, hint = next_part(text)
        started = time.monotonic()
        (status, _, body), (part_status, part_headers, data) = await asyncio.gather(
            fetch(port, f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
            fetch(port, f"{base}/{hint}"),
        )
        viewer.waits.append(time.monotonic() - started)
        assert status == 200, (msn, part, body)
        assert part_status == 200, (hint, data)
        assert "immutable" in part_headers["cache-control"]
        assert "set-cookie" not in part_headers
        viewer.hashes[hint], viewer.lengths[hint] = hashlib.sha256(data).hexdigest(), len(data)
        text = body.decode()
        assert next_part(text)[2] != hint, "the blocking reload did not move past the part"


def hls_answers(vitrine: LiveServer) -> float:
    """Vitrine's own count of the HLS requests it answered (any status)."""
    request = urllib.request.Request(
        f"{vitrine.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        return sum(float(v) for v in HLS_ANSWERS.findall(r.read().decode()))


async def test_nginx_collapses_many_viewers_of_the_newest_parts_into_one_request(
    front: Front,
) -> None:
    show_id, pc, _track = await go_live(front.vitrine)
    base = f"/hls/{show_id}"
    try:
        await first_playlist(f"{front.url}{base}")  # through nginx: the show is on
        await asyncio.sleep(1.1)  # past the playlist's max-age: the clients start afresh
        logged = front.log.stat().st_size
        before = await asyncio.to_thread(hls_answers, front.vitrine)
        started = time.monotonic()
        viewers = [Viewer() for _ in range(CLIENTS)]
        try:
            async with asyncio.timeout(6 + ROUNDS):
                await asyncio.gather(*(follow(front.port, base, v) for v in viewers))
        except TimeoutError:
            pytest.fail(
                f"{CLIENTS} clients did not follow {ROUNDS} parts through nginx in "
                f"{6 + ROUNDS} s: their requests queue behind each other (nginx's error log: "
                f"{front.errors.read_text()[-500:]!r})"
            )
        took = time.monotonic() - started
        after = await asyncio.to_thread(hls_answers, front.vitrine)
        # Straight from Vitrine, for comparison (still in its window of ~10 s).
        direct = {}
        for uri in {uri for v in viewers for uri in v.hashes}:
            got = await aget(f"{front.vitrine.url}{base}/{uri}")
            assert got.status == 200, uri
            direct[uri] = (hashlib.sha256(got.body).hexdigest(), len(got.body))
    finally:
        await pc.close()

    # Every client got Vitrine's bytes for every file it fetched.
    for viewer in viewers:
        for uri, digest in viewer.hashes.items():
            assert (digest, viewer.lengths[uri]) == direct[uri], uri

    with front.log.open() as log:
        log.seek(logged)
        lines = [line.split() for line in log.read().splitlines()]
    asked: Counter[str] = Counter()  # client requests per URI, through nginx
    origin: Counter[str] = Counter()  # those nginx passed on to Vitrine
    for uri, _status, _cache, upstream, *_times in lines:
        asked[uri] += 1
        if upstream != '"-"':
            origin[uri] += 1
    # nginx's log and Vitrine's own counter agree on what reached Vitrine.
    assert after - before == sum(origin.values()), (after - before, origin)

    media = [uri for uri in asked if uri.endswith((".m4s", ".mp4"))]
    parts = [uri for uri in media if re.search(r"/p\d+\.m4s$", uri)]
    assert len(parts) >= ROUNDS, parts
    for uri in media:
        # Vitrine saw about one request per part (the lock's holder; now and then a second
        # one, when a part lands between two of nginx's checks).
        assert origin[uri] <= 3, (uri, origin[uri], asked[uri])
    # Playlists too, blocking reloads included: each asked by (about) every client, each
    # answered once by Vitrine, held until its part existed, then from nginx's cache.
    playlists = [uri for uri in asked if uri not in media]
    assert len(playlists) >= ROUNDS, playlists
    for uri in playlists:
        assert origin[uri] <= 3, (uri, origin[uri], asked[uri])
    asked_media = sum(asked[uri] for uri in media)
    origin_media = sum(origin[uri] for uri in media)
    assert asked_media >= CLIENTS * (ROUNDS + 1)
    assert asked_media / len(media) >= CLIENTS / 4, "the clients did not ask for the same parts"
    assert origin_media <= 3 * len(media)
    waits = sorted(w for v in viewers for w in v.waits)
    print(
        f"{CLIENTS} clients, {asked_media} media requests through nginx, {origin_media} at "
        f"Vitrine; playlists {sum(asked.values()) - asked_media} asked, "
        f"{sum(origin.values()) - origin_media} at Vitrine; part wait p50 "
        f"{waits[len(waits) // 2]:.2f} s, p95 {waits[len(waits) * 95 // 100]:.2f} s; {took:.1f} s"
    )
    assert "[alert]" not in front.errors.read_text() and "[emerg]" not in front.errors.read_text()


READERS = 200
MESSAGES = 3
FEED_URI = re.compile(r"^/rooms/\d+/feed\?after=(\d+)$")


async def read_feed(port: int, show_id: int, seen: list[str]) -> None:
    """A reader of the room's feed through nginx: the state, then long polls from the last
    number seen, collecting the chat, until it has MESSAGES of them."""
    status, _, body = await fetch(port, f"/rooms/{show_id}/feed")
    assert status == 200, body
    seq = json.loads(body)["seq"]
    while len(seen) < MESSAGES:
        status, _, body = await fetch(port, f"/rooms/{show_id}/feed?after={seq}")
        assert status == 200, body
        got = json.loads(body)
        assert not got.get("reset"), got
        assert got["seq"] >= seq
        seq = got["seq"]
        seen += [m["text"] for frame in got["frames"] for m in frame if m["type"] == "chat"]


async def test_nginx_collapses_many_feed_readers_into_one_request_per_tick(
    front: Front,
) -> None:
    show_id = int(
        json.loads(
            front.vitrine.cli("shows", "create", "--title", "Feed", "--starts-at", "2030-01-01")
        )["id"]
    )
    room = Room(front.vitrine, show_id)
    ana = await room.join("Ana")  # on a socket, straight to Vitrine
    try:
        await asyncio.sleep(2.5)  # the viewer count's frame has gone by
        logged = front.log.stat().st_size
        seen: list[list[str]] = [[] for _ in range(READERS)]
        readers = asyncio.gather(*(read_feed(front.port, show_id, s) for s in seen))
        await asyncio.sleep(1.0)  # every reader waits in a long poll
        for i in range(MESSAGES):
            await ana.send(type="chat", text=f"feed {i}")
            await asyncio.sleep(2.1)  # the chat's rate limit
        try:
            async with asyncio.timeout(10):
                await readers
        except TimeoutError:
            pytest.fail(f"readers did not all get the chat through nginx: {seen[:3]}")
    finally:
        await room.close()

    # Every reader saw every message, in order, once.
    for got in seen:
        assert got == [f"feed {i}" for i in range(MESSAGES)], got
    with front.log.open() as log:
        log.seek(logged)
        lines = [line.split() for line in log.read().splitlines()]
    asked: Counter[str] = Counter()
    origin: Counter[str] = Counter()
    for uri, _status, _cache, upstream, *_times in lines:
        if FEED_URI.match(uri):
            asked[uri] += 1
            if upstream != '"-"':
                origin[uri] += 1
    # One `after` per tick that had a frame: every reader asked for it, and Vitrine saw it
    # about once (the lock's holder, held until the frame came).
    assert len(asked) >= MESSAGES, asked
    busy = [uri for uri in asked if asked[uri] >= READERS // 2]
    assert len(busy) >= MESSAGES, asked
    for uri in busy:
        assert origin[uri] <= 3, (uri, origin[uri], asked[uri])
    assert sum(origin.values()) <= 3 * len(asked), (origin, asked)
    print(
        f"{READERS} feed readers, {sum(asked.values())} long polls through nginx, "
        f"{sum(origin.values())} at Vitrine, {len(asked)} ticks"
    )
    errors = front.errors.read_text()
    assert "[alert]" not in errors and "[emerg]" not in errors
