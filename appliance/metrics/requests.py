"""HTTP answers counted by route class and status: a few dozen series at most."""

from __future__ import annotations

from collections import Counter

# The first path segment names the class; anything else that matched a route is a page.
CLASSES = {
    "admin": "admin",
    "api": "api",
    "whip": "whip",
    "whep": "whep",
    "static": "static",
    "uploads": "uploads",
    "replays": "replays",
    "hls": "hls",
    "metrics": "metrics",
    "healthz": "health",
    "login": "auth",
    "logout": "auth",
    "setup": "auth",
}


def route_class(path: str, matched: bool) -> str:
    """The class of a request path; "unmatched" when no route took it (404 probes), so
    a scan of random paths cannot grow the number of series."""
    if not matched:
        return "unmatched"
    first = path.lstrip("/").split("/", 1)[0]
    return CLASSES.get(first, "page")


def status_class(status: int) -> str:
    """The status code itself for the usual ones, else its hundred (e.g. "5xx")."""
    return str(status) if status in KNOWN_STATUSES else f"{status // 100}xx"


KNOWN_STATUSES = frozenset(
    {200, 201, 204, 206, 301, 302, 303, 304, 307, 400, 401, 403, 404, 405, 409, 413, 429}
    | {500, 503}
)


class RequestCounts:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def count(self, path: str, matched: bool, status: int) -> None:
        self.counts[(route_class(path, matched), status_class(status))] += 1
