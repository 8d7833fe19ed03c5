"""Uploaded images: sniffed by content, size-limited, stored under names Vitrine picks.

The user's file name is never used on disk or in a URL, so an upload can neither
choose where it lands nor be served as anything but an image.

A few hundred bytes of PNG can claim 20000x20000 pixels, which a phone then tries to
decode into 1.6 GB: the pixel count is read from the file's header (PNG IHDR, JPEG SOF,
WebP VP8/VP8L/VP8X), without decoding anything, and refused over `limits.max_image_pixels`.
An accepted image larger than `VIEWER_SIDE` on its long side also gets a resized copy,
`<name>-view.<jpg|png>`, which the viewer site shows (`viewer_name`); the admin keeps
the original.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
import struct
from fractions import Fraction
from pathlib import Path
from typing import Any

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"WEBP", 8, "webp"),
)
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(png|jpg|webp)$")
VIEWER_SIDE = 1280  # the long side of the copy the viewer site shows
_PIPES = {"png": "png_pipe", "jpg": "jpeg_pipe", "webp": "webp_pipe"}


class BadUpload(ValueError):
    """The upload is not an accepted image; `reason` is a message key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def sniff_image(data: bytes) -> str | None:
    for magic, offset, ext in _SIGNATURES:
        if data[offset : offset + len(magic)] == magic:
            if ext == "webp" and not data.startswith(b"RIFF"):
                continue
            return ext
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # Signature, then the first chunk, which must be IHDR: length, type, width, height.
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the first start-of-frame segment (any SOF kind)."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        if marker in (0xD9, 0xDA) or length < 2:  # end of image, scan: no frame header
            return None
        at += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def image_size(data: bytes, ext: str) -> tuple[int, int] | None:
    """(width, height) as the image's header states it, or None if it cannot be read."""
    size = {"png": _png_size, "jpg": _jpeg_size, "webp": _webp_size}[ext](data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def resized(data: bytes, ext: str, side: int = VIEWER_SIDE) -> tuple[bytes, str]:
    """A copy at most `side` pixels on its long side: PNG when the original has an
    alpha channel or is a PNG, else JPEG. Decodes the image (PyAV): call it only on an
    image whose pixel count was checked."""
    import av  # a media dependency already: Vitrine decodes and encodes video with it

    with av.open(io.BytesIO(data), "r", format=_PIPES[ext]) as container:
        frame = next(container.decode(video=0))
    scale = side / max(frame.width, frame.height)
    width, height = max(1, round(frame.width * scale)), max(1, round(frame.height * scale))
    alpha = "a" in frame.format.name.replace("gray", "")
    out_ext = "png" if ext == "png" or alpha else "jpg"
    if out_ext == "png":
        pix_fmt, codec = ("rgba" if alpha else "rgb24"), "png"
    else:
        pix_fmt, codec = "yuvj420p", "mjpeg"
    small = frame.reformat(width=width, height=height, format=pix_fmt, interpolation="AREA")
    encoder: Any = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 25)  # one still image; mjpeg wants a time base
    if codec == "mjpeg":
        encoder.qmin, encoder.qmax = 2, 6  # good quality; the copy is still small
    packets = [*encoder.encode(small), *encoder.encode(None)]
    return b"".join(bytes(p) for p in packets), out_ext


class UploadStore:
    def __init__(self, directory: Path, max_bytes: int, max_pixels: int = 40_000_000) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self._viewer_names: dict[str, str] = {}

    def path_of(self, name: str) -> Path | None:
        """The file for a stored name, or None for anything that is not one."""
        if not NAME_RE.match(name):
            return None
        path = self.directory / name
        return path if path.is_file() else None

    def check(self, data: bytes) -> str:
        if not data:
            raise BadUpload("empty")
        if len(data) > self.max_bytes:
            raise BadUpload("too_large")
        ext = sniff_image(data)
        if ext is None:
            raise BadUpload("not_image")
        size = image_size(data, ext)
        if size is None:
            raise BadUpload("not_image")
        if size[0] * size[1] > self.max_pixels:
            raise BadUpload("too_many_pixels")
        return ext

    async def save(self, data: bytes) -> str:
        """Store an image (checked again here) and, when it is large, its viewer copy."""
        ext = self.check(data)
        stem = secrets.token_urlsafe(18)
        name = f"{stem}.{ext}"
        width, height = image_size(data, ext) or (0, 0)
        if max(width, height) > VIEWER_SIDE:
            try:
                copy, copy_ext = await asyncio.to_thread(resized, data, ext)
            except Exception as exc:  # the header was fine, the pixels are not: not an image
                raise BadUpload("not_image") from exc
            await asyncio.to_thread(self._write, f"{stem}-view.{copy_ext}", copy)
        await asyncio.to_thread(self._write, name, data)
        self._viewer_names.pop(name, None)
        return name

    def viewer_name(self, name: str | None) -> str | None:
        """The name the viewer site shows for a stored image: its resized copy if it has
        one, else the image itself (remembered: asked for every image of every page)."""
        if not name:
            return name
        known = self._viewer_names.get(name)
        if known is None:
            known = name
            stem = name.rsplit(".", 1)[0]
            for ext in ("jpg", "png"):
                copy = f"{stem}-view.{ext}"
                if NAME_RE.match(copy) and (self.directory / copy).is_file():
                    known = copy
                    break
            if len(self._viewer_names) > 10_000:
                self._viewer_names.clear()
            self._viewer_names[name] = known
        return known

    def _write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    async def remove(self, name: str | None) -> None:
        if name and NAME_RE.match(name):
            stem = name.rsplit(".", 1)[0]
            for file in (name, f"{stem}-view.jpg", f"{stem}-view.png"):
                await asyncio.to_thread((self.directory / file).unlink, True)
            self._viewer_names.pop(name, None)
