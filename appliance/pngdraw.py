"""A tiny PNG writer for the demo shop's product pictures (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def product_picture(color: tuple[int, int, int], size: int = 480) -> bytes:
    """A soft vertical gradient of `color` with a lighter disc in the middle."""
    r, g, b = color
    centre, radius2 = size / 2, (size * 0.3) ** 2
    rows = bytearray()
    for y in range(size):
        shade = 0.75 + 0.25 * (y / size)
        base = bytes((int(r * shade), int(g * shade), int(b * shade)))
        light = bytes((min(255, r + 70), min(255, g + 70), min(255, b + 70)))
        dy2 = (y - centre) ** 2
        rows.append(0)
        for x in range(size):
            rows += light if (x - centre) ** 2 + dy2 < radius2 else base
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _chunk(b"IEND", b"")
    )
