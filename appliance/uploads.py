"""Uploaded images: sniffed by content, size-limited, stored under names Vitrine picks.

The user's file name is never used on disk or in a URL, so an upload can neither
choose where it lands nor be served as anything but an image.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from pathlib import Path

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "png"),
    (b"\xff\xd8\xff", 0, "jpg"),
    (b"WEBP", 8, "webp"),
)
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(png|jpg|webp)$")


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


class UploadStore:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes

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
        return ext

    async def save(self, data: bytes) -> str:
        ext = self.check(data)
        name = f"{secrets.token_urlsafe(18)}.{ext}"
        await asyncio.to_thread(self._write, name, data)
        return name

    def _write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(self.directory / name)

    async def remove(self, name: str | None) -> None:
        if name and NAME_RE.match(name):
            await asyncio.to_thread((self.directory / name).unlink, True)
