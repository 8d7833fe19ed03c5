"""How the room's frames reach sockets (appliance/room/wire.py): frames built once and
written straight to each connection's transport, and the queued path kept for
connections where that is not possible. Real sockets on 127.0.0.1 and a real Hypercorn."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from babel.support import NullTranslations
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection, TextMessage

from appliance.room.hub import CLOSE_SLOW, Client, Room
from appliance.room.wire import MAX_BUFFERED, DirectOutlet, Frame, direct_outlet
from tests.conftest import LiveServer, free_port, launch, stop


def read_frames(data: bytes) -> list[str]:
    """Server frames as a browser reads them (wsproto as the client)."""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(data)
    return [e.data for e in client.events() if isinstance(e, TextMessage)]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_reads_back_at_every_length_boundary(size: int) -> None:
    from websockets.frames import Frame as Parsed
    from websockets.frames import Opcode
    from websockets.streams import StreamReader

    text = "é" * (size // 2) + "x" * (size % 2)  # é is two bytes
    frame = Frame(text)
    assert frame.wire is frame.wire  # made once, then shared
    reader = StreamReader()  # another library's parser, as a browser's would be
    reader.feed_data(frame.wire)
    reader.feed_eof()
    parsing = Parsed.parse(reader.read_exact, mask=False)
    with pytest.raises(StopIteration) as done:
        next(parsing)
    parsed = done.value.value
    assert (parsed.opcode, parsed.fin, len(parsed.data)) == (Opcode.TEXT, True, size)
    assert parsed.data.decode() == text
    assert not reader.buffer  # nothing after the frame


async def loopback_pair(small_buffers: bool) -> tuple[asyncio.WriteTransport, socket.socket]:
    """A server-side transport and the peer socket at the other end of a TCP connection
    on 127.0.0.1; with small kernel buffers, a peer that does not read backs the
    transport's own buffer up quickly."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.socket()
        if small_buffers:
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        peer.connect(listener.getsockname())
        conn, _ = listener.accept()
    if small_buffers:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    conn.setblocking(False)
    peer.setblocking(False)
    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(asyncio.Protocol, conn)
    return transport, peer  # type: ignore[return-value]


def drain(peer: socket.socket, into: bytearray) -> None:
    while True:
        try:
            data = peer.recv(1 << 16)
        except BlockingIOError:
            return
        if not data:
            return
        into += data


async def test_direct_frames_keep_order_and_a_client_that_does_not_read_is_dropped() -> None:
    room = Room(1, "live", time.time())
    fast_transport, fast_peer = await loopback_pair(small_buffers=False)
    slow_transport, slow_peer = await loopback_pair(small_buffers=True)
    fast = Client("v_fast_client_0000", "a", NullTranslations(), said_hello=True)
    slow = Client("v_slow_client_0000", "b", NullTranslations(), said_hello=True)
    fast_ws, slow_ws = Connection(ConnectionType.SERVER), Connection(ConnectionType.SERVER)
    fast.outlet = DirectOutlet(fast_transport, fast_ws)
    slow.outlet = DirectOutlet(slow_transport, slow_ws)
    room.clients |= {fast, slow}
    received = bytearray()
    ticks = 3 * MAX_BUFFERED // 4000
    try:
        for i in range(ticks):
            for j in range(4):  # about 4 kB a tick
                room.broadcast({"type": "chat", "id": 4 * i + j, "text": "x" * 1000})
            now = time.monotonic() + i
            fast.heard = slow.heard = now  # both alive: only slowness is at stake
            room.tick(now)
            await asyncio.sleep(0)  # the transports flush what the kernel takes
            drain(fast_peer, received)
        await asyncio.sleep(0.05)
        drain(fast_peer, received)

        assert slow.close_code == CLOSE_SLOW and fast.close_code is None
        messages = [m for f in read_frames(bytes(received)) for m in json.loads(f)]
        ids = [m["id"] for m in messages if m["type"] == "chat"]
        assert ids == list(range(4 * ticks))  # every message, in order, each once

        async def unused(message: dict[str, Any]) -> None:
            raise AssertionError(f"a close frame behind a backlog was sent: {message}")

        # The slow client's backlog cannot be taken back: its connection is cut.
        await asyncio.wait_for(slow.outlet.run(unused, lambda: CLOSE_SLOW), 1)
        assert slow_transport.is_closing()

        # Once the server's websocket has a close under way, no frame follows it.
        close = fast_ws.send(CloseConnection(code=1000))
        fast_transport.write(close)
        room.broadcast({"type": "chat", "id": -1, "text": "after the close"})
        room.tick(time.monotonic() + ticks)
        await asyncio.sleep(0.05)
        after = bytearray()
        drain(fast_peer, after)
        assert bytes(after) == close

        # A client closed normally gets its close through the server, after its frames.
        sent: list[dict[str, Any]] = []

        async def record(message: dict[str, Any]) -> None:
            sent.append(message)

        fast.close(1000)
        await asyncio.wait_for(fast.outlet.run(record, lambda: fast.close_code or 0), 1)
        assert sent == [{"type": "websocket.close", "code": 1000}]
    finally:
        for transport in (fast_transport, slow_transport):
            transport.abort()
        fast_peer.close()
        slow_peer.close()


async def asgi_probe(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Says, on the socket itself, whether direct_outlet reached the transport."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    outlet = direct_outlet(send, scope)
    if outlet is None:
        await send({"type": "websocket.send", "text": "queued"})
    else:
        assert outlet.put(Frame("direct"))
    await send({"type": "websocket.close", "code": 1000})


@pytest.fixture
async def hypercorn_url(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    import hypercorn.protocol.ws_stream as ws_stream
    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from wsproto.extensions import PerMessageDeflate

    # Hypercorn as it comes: it accepts compression when a client offers it.
    monkeypatch.setattr(ws_stream, "PerMessageDeflate", PerMessageDeflate)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    stopping = asyncio.Event()
    task = asyncio.ensure_future(serve(asgi_probe, config, shutdown_trigger=stopping.wait))
    deadline = time.monotonic() + 10
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            assert time.monotonic() < deadline, "hypercorn did not start"
            await asyncio.sleep(0.05)
    yield f"ws://127.0.0.1:{port}/"
    stopping.set()
    await asyncio.wait_for(task, 10)


async def test_the_transport_is_found_under_hypercorn_unless_compression_is_on(
    hypercorn_url: str,
) -> None:
    async with websockets.connect(hypercorn_url, compression=None) as ws:
        assert await ws.recv() == "direct"
        await ws.wait_closed()
        assert ws.close_code == 1000  # the server's close came after the direct frame
    async with websockets.connect(hypercorn_url) as ws:  # offers permessage-deflate
        assert ws.protocol.extensions, "compression was negotiated"
        assert await ws.recv() == "queued"


@pytest.fixture
def compressing_server(tmp_path: Path) -> Iterator[tuple[LiveServer, int]]:
    server = launch(
        tmp_path / "data", tmp_path / "server.log", {"VITRINE_SERVER_WEBSOCKET_COMPRESSION": "true"}
    )
    created = json.loads(
        server.cli("shows", "create", "--title", "Deflate", "--starts-at", "2030-01-01T10:00")
    )
    yield server, int(created["id"])
    stop(server)


async def test_with_compression_on_the_room_works_for_both_kinds_of_client(
    compressing_server: tuple[LiveServer, int],
) -> None:
    server, show = compressing_server
    url = server.url.replace("http://", "ws://") + f"/ws/shows/{show}"

    async def join(name: str, compression: str | None) -> Any:
        ws = await websockets.connect(
            url,
            origin=server.url,  # type: ignore[arg-type]
            compression=compression,  # type: ignore[arg-type]
            additional_headers={"Cookie": f"vitrine_viewer=v_{name}_0123456789abcdef"},
        )
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": name}))
        return ws

    async def wait_for_chat(ws: Any, text: str) -> None:
        async with asyncio.timeout(5):
            while True:
                for message in json.loads(await ws.recv()):
                    if message["type"] == "chat" and message["text"] == text:
                        return

    deflated = await join("deflated", "deflate")  # frames through the queued path
    plain = await join("plain", None)  # frames straight to the transport
    try:
        assert deflated.protocol.extensions and not plain.protocol.extensions
        await plain.send(json.dumps({"type": "chat", "text": "from plain"}))
        await wait_for_chat(deflated, "from plain")
        await deflated.send(json.dumps({"type": "chat", "text": "from deflated"}))
        await wait_for_chat(plain, "from deflated")
    finally:
        await deflated.close()
        await plain.close()


def test_the_tick_reports_its_timing_and_warns_when_late(caplog: pytest.LogCaptureFixture) -> None:
    import gc
    import logging

    from appliance.room.health import REPORT_EVERY, RoomHealth

    health = RoomHealth()
    health.start()
    try:
        gc.collect()
    finally:
        health.stop()
    assert len(health.gc_pauses) >= 1  # the collector's passes are timed
    caplog.set_level(logging.INFO, "appliance.room.health")

    def report(lag: float, clients: int) -> list[logging.LogRecord]:
        caplog.clear()
        for _ in range(99):
            health.tick(0.001, 0.002, clients)
        health._since -= REPORT_EVERY  # ten seconds later
        health.tick(lag, 0.002, clients)
        return [r for r in caplog.records if r.name == "appliance.room.health"]

    (calm,) = report(0.001, 2000)
    assert calm.levelno == logging.INFO and "2000 clients, 100 ticks" in calm.getMessage()
    (late,) = report(0.3, 2000)  # one tick in a hundred woke 300 ms late: p99
    assert late.levelno == logging.WARNING and "max 300.0 ms" in late.getMessage()
    assert report(0.3, 0) == []  # an empty server says nothing


def test_full_collections_come_when_the_room_allows(caplog: pytest.LogCaptureFixture) -> None:
    import gc
    import logging

    from appliance.room import collector as policy

    passes: list[int] = []

    def seen(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop":
            passes.append(info["generation"])

    full = policy.FullCollections()
    start = full.last
    caplog.set_level(logging.INFO, "appliance.room.collector")
    gc.callbacks.append(seen)
    try:
        full.tick(start + policy.IDLE_EVERY + 1, clients=2000)  # a show: not yet
        assert 2 not in passes
        full.tick(start + policy.IDLE_EVERY + 1, clients=0)  # nobody in: now
        assert passes.count(2) == 1 and not caplog.records
        full.tick(full.last + 1, clients=0)  # not again so soon
        assert passes.count(2) == 1
        full.tick(full.last + policy.BUSY_EVERY + 1, clients=2000)  # the show's bound
        assert passes.count(2) == 2
        assert "full garbage collection with 2000 clients" in caplog.records[-1].getMessage()
    finally:
        gc.callbacks.remove(seen)


def test_the_serving_process_turns_automatic_full_collections_off() -> None:
    import subprocess
    import sys

    code = (
        "import gc; from appliance.room.collector import FullCollections, NEVER; "
        "FullCollections().take_over(); "
        "print(gc.get_threshold()[2] == NEVER, gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "True"]
