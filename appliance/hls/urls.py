"""A show's HLS playlist address as its page gives it, and the CDN origin pages may read."""

from __future__ import annotations

from urllib.parse import urlsplit


def playlist_url(base_url: str, show_id: int) -> str:
    """`/hls/<show>/index.m3u8` on this server, or under `base_url` (a CDN or a caching
    nginx in front of it, e.g. `https://cdn.example.com`) when one is set."""
    return f"{base_url.rstrip('/')}/hls/{show_id}/index.m3u8"


def cdn_origin(base_url: str) -> str:
    """The origin (scheme://host[:port]) of `base_url`, for the pages' CSP; "" if none."""
    if not base_url:
        return ""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"
