"""The control channel between the main process and a worker: JSON messages, each
preceded by its length (4 bytes, big-endian), on a Unix stream socket.

Requests carry an `id` and get one reply with the same `id` (`ok` true, or an `error`
and a `message`); events carry an `ev` and get no reply.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
MAX_MESSAGE = 16 * 1024 * 1024


def frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None when the other end has gone."""
    try:
        head = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(head)
        if size > MAX_MESSAGE:
            return None
        body = await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    message = json.loads(body)
    return message if isinstance(message, dict) else None
