"""How the live room's frames reach a client's socket.

A tick sends the same frame to every viewer. A websocket frame from the server is not
masked, so its bytes are the same for every connection: they are built once per tick
(`Frame.wire`) and written straight to each connection's transport (`DirectOutlet`).
That is one `transport.write` per viewer, with no task, queue, await or per-connection
encoding on the way; the transport's own buffer keeps the order, and its size says when
a client cannot keep up.

Hypercorn does not hand an ASGI app its transport, so `direct_outlet` walks from the
ASGI `send` callable to it, and only for what it knows: an HTTP/1.1 upgrade with no
websocket extension in use. Anything else (a websocket over HTTP/2, compression turned
on, another server) gets a `QueuedOutlet`: a bounded queue of frames that one task per
client sends through ASGI, merging a backlog into one frame.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from wsproto.connection import Connection, ConnectionState
from wsproto.frame_protocol import FrameProtocol

Send = Callable[[dict[str, Any]], Awaitable[None]]

QUEUE_FRAMES = 64  # frames a queued outlet holds, the last slot kept for the close
MAX_BUFFERED = 128 * 1024  # bytes a direct outlet may have waiting above the kernel's
CLOSE_GRACE = 5.0  # seconds a client being closed has to take the close frame


def text_frame(text: str) -> bytes:
    """A final text frame as a server sends it (unmasked), encoded by wsproto as
    Hypercorn's own frames are; with fin set, its frame protocol keeps no state."""
    return bytes(FrameProtocol(client=False, extensions=[]).send_data(text, fin=True))


class Frame:
    """One frame for one or many clients: its text, and its bytes on the wire, made on
    first use and then shared."""

    __slots__ = ("_wire", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = text_frame(self.text)
        return self._wire


class Outlet(Protocol):
    def put(self, frame: Frame) -> bool:
        """Pass a frame on; False when the client cannot keep up."""

    def finish(self, discard: bool) -> None:
        """No more frames: close after those already passed on, or drop them."""

    async def run(self, send: Send, close_code: Callable[[], int]) -> None:
        """Until the client is closed: whatever sending needs a task for, then the close."""


def merge_frames(frames: list[str]) -> str:
    """Frames are JSON arrays of messages: several become one array, in order."""
    return "[" + ",".join(body for f in frames if (body := f[1:-1].strip())) + "]"


class QueuedOutlet:
    """A bounded queue of frames, sent through ASGI by the client's own task."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_FRAMES)

    def put(self, frame: Frame) -> bool:
        if self.queue.qsize() >= QUEUE_FRAMES - 1:  # keep the last slot for the close
            return False
        self.queue.put_nowait(frame.text)
        return True

    def finish(self, discard: bool) -> None:
        if discard:
            while not self.queue.empty():
                self.queue.get_nowait()
        self.queue.put_nowait(None)  # run() closes the socket when it gets here

    async def run(self, send: Send, close_code: Callable[[], int]) -> None:
        """Send the frames in order. A client that fell behind (several frames waiting)
        gets them as one: when the server is busy, each client costs one send per turn of
        the loop instead of one per tick, so a backlog drains instead of growing."""
        queue = self.queue
        while True:
            frames = [await queue.get()]
            while not queue.empty():
                frames.append(queue.get_nowait())
            closing = frames[-1] is None  # the close is always the last thing queued
            data = [f for f in frames if f is not None]
            if data:
                text = data[0] if len(data) == 1 else merge_frames(data)
                await send({"type": "websocket.send", "text": text})
            if closing:
                await send({"type": "websocket.close", "code": close_code()})
                return


class DirectOutlet:
    """Frames written straight to the connection's transport. `ws` is the server's own
    view of the websocket: once it has sent or received a close, no frame may follow."""

    def __init__(self, transport: asyncio.WriteTransport, ws: Connection) -> None:
        self.transport = transport
        self.ws = ws
        self.finished = asyncio.Event()
        self.discarded = False

    def put(self, frame: Frame) -> bool:
        transport = self.transport
        if transport.is_closing() or self.ws.state is not ConnectionState.OPEN:
            return True  # closing: the reader sees the disconnect and the client leaves
        if transport.get_write_buffer_size() > MAX_BUFFERED:
            return False
        transport.write(frame.wire)
        return True

    def finish(self, discard: bool) -> None:
        self.discarded = discard
        self.finished.set()

    async def run(self, send: Send, close_code: Callable[[], int]) -> None:
        await self.finished.wait()
        if self.discarded and self.transport.get_write_buffer_size() > MAX_BUFFERED:
            # What is written cannot be taken back, and a close frame behind a backlog
            # the client does not read would never arrive.
            self.transport.abort()
            return
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                await send({"type": "websocket.close", "code": close_code()})
        except TimeoutError:
            self.transport.abort()


def direct_outlet(send: Send, scope: dict[str, Any]) -> DirectOutlet | None:
    """An outlet straight to the transport under a websocket Hypercorn serves over
    HTTP/1.1 with no extension (such as compression) in use, or None: then frames must
    go through ASGI."""
    if scope.get("http_version") != "1.1":
        return None
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.ws_stream import WSStream

    with contextlib.suppress(AttributeError):
        stream = getattr(send, "__self__", None)
        if not isinstance(stream, WSStream):
            return None
        ws = stream.connection
        # wsproto keeps the extensions in use (compression) on its frame protocol.
        if not isinstance(ws, Connection) or ws._proto.extensions:
            return None
        protocol = getattr(stream.send, "__self__", None)
        if not isinstance(protocol, H11Protocol):
            return None
        server = getattr(protocol.send, "__self__", None)
        if not isinstance(server, TCPServer):
            return None
        transport = server.writer.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            return DirectOutlet(transport, ws)
    return None
