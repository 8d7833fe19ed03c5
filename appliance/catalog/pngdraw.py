"""A tiny PNG writer for the demo shop's product pictures (no imaging library needed)."""

from __future__ import annotations

import struct
import zlib


def _chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def product_picture(
    color: tuple[int, int, int], size: int = 480, height: int | None = None
) -> bytes:
    """A soft vertical gradient of `color` with a lighter disc in the middle."""
    r, g, b = color
    width, height = size, height or size
    cx, cy, radius2 = width / 2, height / 2, (min(width, height) * 0.3) ** 2
    light = bytes((min(255, r + 70), min(255, g + 70), min(255, b + 70)))
    rows = bytearray()
    for y in range(height):
        shade = 0.75 + 0.25 * (y / height)
        base = bytes((int(r * shade), int(g * shade), int(b * shade)))
        dy2 = (y - cy) ** 2
        rows.append(0)
        for x in range(width):
            rows += light if (x - cx) ** 2 + dy2 < radius2 else base
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 6))
        + _chunk(b"IEND", b"")
    )
