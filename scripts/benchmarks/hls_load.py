"""The load generator of `scripts/bench hls`: thousands of LL-HLS clients and room-feed
readers, in a few processes, each an asyncio loop (uvloop) of raw HTTP/1.1 keep-alive
connections (no HTTP library: its per-request cost would be the limit long before the
server's).

- An HLS client follows the live edge as an LL-HLS player does: the playlist, the init
  segment, then round after round the blocking reload of the next part
  (`_HLS_msn`/`_HLS_part`) and that part as the preload hint names it, sent at once on
  its two keep-alive connections (playlists, media), the part answered once it exists.
  A client behind the edge fetches the parts the playlist already lists, one after the
  other, as a player does; it notes when it got each part. One whose next part has left
  the playlist's window starts again at the edge: the parts it missed count as not
  delivered.
- A feed reader reads the room's state, then long-polls `?after=<seq>` from the last
  number it saw and notes, for each chat message `bench <monotonic time>`, how long after
  it was sent it arrived (CLOCK_MONOTONIC is the same for every process here).
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import resource
import time
from typing import Any

HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
MAP = re.compile(rb'#EXT-X-MAP:URI="([^"]+)"')
MSN = re.compile(rb"#EXT-X-MEDIA-SEQUENCE:(\d+)")
EXTINF = re.compile(rb"^#EXTINF:", re.M)
PART_LINE = re.compile(rb"^#EXT-X-PART:", re.M)
PART_NUMBER = re.compile(r"p(\d+)\.m4s$")
SEQ = re.compile(rb'^\{"seq":(\d+)')


def raise_open_files() -> None:
    """As many open files as the kernel lets this process have (thousands of sockets)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, 1 << 20))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; requests may be pipelined, answers come in
    order (Content-Length or chunked bodies)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: collections.deque[asyncio.Future[tuple[int, bytes]]] = collections.deque()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(ConnectionError("closed"))
                future.exception()  # raised to whoever awaits it; no "never retrieved"

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.waiting:
            answer = self._answer()
            if answer is None:
                return
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(answer)

    def _answer(self) -> tuple[int, bytes] | None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buffer[:end]).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop > 0 else len(head)])
            if len(buffer) < end + 4 + length:
                return None
            body = bytes(buffer[end + 4 : end + 4 + length])
            del buffer[: end + 4 + length]
            return status, body
        if b"transfer-encoding: chunked" not in head:
            body = b""  # no body (204, 304)
            del buffer[: end + 4]
            return status, body
        chunks, at = [], end + 4
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                return None
            size = int(bytes(buffer[at:line_end]).split(b";")[0], 16)
            if len(buffer) < line_end + 2 + size + 2:
                return None
            if size == 0:
                del buffer[: line_end + 4]
                return status, b"".join(chunks)
            chunks.append(bytes(buffer[line_end + 2 : line_end + 2 + size]))
            at = line_end + 2 + size + 2

    def get(self, *paths: str) -> list[asyncio.Future[tuple[int, bytes]]]:
        if self.transport is None:
            raise ConnectionError("closed")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in paths]
        self.waiting.extend(futures)
        self.transport.write(
            b"".join(
                f"GET {path} HTTP/1.1\r\nHost: cdn.example.com\r\n\r\n".encode() for path in paths
            )
        )
        return futures

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, n: int) -> Conn:
    """A connection from 127.0.0.<2..251> (by `n`): thousands of them need more than one
    source address's ports, as real viewers have."""
    loop = asyncio.get_running_loop()
    source = f"127.0.0.{2 + n % 250}"
    _, conn = await loop.create_connection(Conn, "127.0.0.1", port, local_addr=(source, 0))
    return conn


def next_part(text: bytes) -> tuple[int, int, str]:
    """The part a player asks for next: its segment and index there (the blocking reload's
    _HLS_msn and _HLS_part) and its URI (the preload hint)."""
    msn = int(MSN.findall(text)[0]) + len(EXTINF.findall(text))
    open_segment = text.rsplit(b"#EXTINF:", 1)[-1] if b"#EXTINF:" in text else text
    return msn, len(PART_LINE.findall(open_segment)), HINT.findall(text)[0].decode()


def listed(text: bytes, number: int) -> bool:
    """Whether the playlist lists part `number` as made (an EXT-X-PART line, not the
    preload hint of the part to come)."""
    at = text.find(b'/p%d.m4s"' % number)
    return at >= 0 and text.startswith(b"#EXT-X-PART:", text.rfind(b"\n", 0, at) + 1)


class Tally:
    def __init__(self) -> None:
        self.arrivals: dict[int, list[float]] = collections.defaultdict(list)
        self.delays: list[float] = []
        self.requests = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.running = 0


async def follow(port: int, base: str, n: int, until: float, tally: Tally) -> None:
    # Two connections, as a player's playlist and media loaders have: a blocking reload
    # does not hold up the part behind it (HTTP/1.1 answers in order).
    lists, media = await connect(port, n), await connect(port, n)
    tally.running += 1
    try:
        text, want, pattern = b"", -1, ""
        while time.monotonic() < until:
            if not text:
                ((status, text),) = [await f for f in lists.get(f"{base}/index.m3u8")]
                init = MAP.findall(text)
                tally.requests += 1
                if status != 200 or not init:
                    # A 503 is Vitrine's budget shedding load: retried after its
                    # Retry-After (1 s), as hls.js and Safari do.
                    tally.errors["shed" if status == 503 else f"playlist {status}"] += 1
                    text = b""
                    await asyncio.sleep(1.0 if status == 503 else 0.5)
                    continue
                ((status, _),) = [await f for f in media.get(f"{base}/{init[-1].decode()}")]
                tally.requests += 1
                hint = next_part(text)[2]
                want = int(PART_NUMBER.findall(hint)[0])
                pattern = PART_NUMBER.sub("p{}.m4s", hint)
            uri = f"{base}/{pattern.format(want)}"
            if listed(text, want):
                # Made already (this client is behind the edge): the part, no reload.
                ((part_status, data),) = [await f for f in media.get(uri)]
                tally.requests += 1
                status, body = 200, text
            else:
                msn, part, _hint = next_part(text)
                (reload,) = lists.get(f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
                (fetch,) = media.get(uri)
                (status, body), (part_status, data) = await reload, await fetch
                tally.requests += 2
            shed = (status == 503) + (part_status == 503)
            if part_status == 200 and data:
                tally.arrivals[want].append(time.monotonic())
                want += 1
            else:  # fell out of the window (or a new period): start again at the edge
                if part_status != 503:
                    tally.errors[f"part {part_status}"] += 1
                body, status = b"", 0
            text = body if status == 200 else b""
            if shed:
                tally.errors["shed"] += shed
                await asyncio.sleep(1.0)  # Retry-After
    except (ConnectionError, OSError) as exc:
        tally.errors[type(exc).__name__] += 1
    finally:
        tally.running -= 1
        lists.close()
        media.close()


async def read_feed(port: int, show: int, n: int, until: float, tally: Tally) -> None:
    conn = await connect(port, n)
    tally.running += 1
    feed = f"/rooms/{show}/feed"
    try:
        seq = -1
        while time.monotonic() < until:
            path = feed if seq < 0 else f"{feed}?after={seq}"
            ((status, body),) = [await f for f in conn.get(path)]
            tally.requests += 1
            now = time.monotonic()
            if status != 200:
                tally.errors[f"feed {status}"] += 1
                await asyncio.sleep(0.5)
                continue
            if seq < 0 or b'"reset"' in body:
                if seq >= 0:
                    tally.errors["reset"] += 1
                seq = int(json.loads(body)["seq"])
                continue
            # The chat's text, found without parsing the answer (10,000 readers a tick).
            at = body.find(b'"text": "bench ')
            while at >= 0:
                start = at + 15
                tally.delays.append(now - float(body[start : body.index(b'"', start)]))
                at = body.find(b'"text": "bench ', start)
            match = SEQ.match(body)
            seq = int(match.group(1)) if match else int(json.loads(body)["seq"])
    except (ConnectionError, OSError) as exc:
        tally.errors[type(exc).__name__] += 1
    finally:
        tally.running -= 1
        conn.close()


async def _crowd(kind: str, args: dict[str, Any], first: int, count: int) -> dict[str, Any]:
    """`count` clients (numbered from `first`), started over `ramp` seconds, until `until`."""
    tally = Tally()
    until, ramp = args["until"], args["ramp"]
    started = time.monotonic()
    tasks = []
    for i in range(count):
        # The same start times in every process, spread evenly.
        await asyncio.sleep(max(0.0, started + ramp * i / max(count, 1) - time.monotonic()))
        n = first + i
        if kind == "hls":
            tasks.append(asyncio.ensure_future(follow(args["port"], args["base"], n, until, tally)))
        else:
            tasks.append(
                asyncio.ensure_future(read_feed(args["port"], args["show"], n, until, tally))
            )
    connected_at = time.monotonic()
    await asyncio.gather(*tasks, return_exceptions=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "arrivals": dict(tally.arrivals),
        "delays": tally.delays,
        "requests": tally.requests,
        "errors": dict(tally.errors),
        "cpu": usage.ru_utime + usage.ru_stime,
        "ramped": connected_at - started,
    }


def worker(kind: str, args: dict[str, Any], first: int, count: int, out: Any) -> None:
    """A generator process: its clients' tally goes to the `out` queue."""
    raise_open_files()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    out.put(runner(_crowd(kind, args, first, count)))
