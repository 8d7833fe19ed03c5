"""The process's budget of HLS answers: load shedding before any work.

One process answers about 900-1,100 HLS requests a second at a full core (docs/perf.md);
past that the event loop starves everything else on it, the show's own publisher
included, and the show stops for every viewer. So the HLS views ask `HlsAdmission` first:
a token bucket of answers a second (a second's worth of burst) and a count of blocking
requests held at once. Over either, the request is refused with a 503 and
`Retry-After: 1` (hls.js and Safari retry), and counted for /metrics. The budget is
global: a request from nginx or a CDN in front (many viewers collapsed into one) costs
the same as a viewer's own. The check is two float operations and a comparison, made by
`HlsGate` in front of the whole app (plain ASGI): a refused request costs no request
context, no hooks and no routing, for a shed request that costs as much as an answered
one stops nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

RATE = "rate"  # reasons a request was shed, the label of vitrine_hls_shed_total
HELD = "held"


class TokenBucket:
    """`rate` tokens a second, at most `rate` stored (one second of burst); rate 0 never
    refuses."""

    __slots__ = ("at", "clock", "rate", "tokens")

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.tokens = rate
        self.clock = clock
        self.at = clock()

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class HlsAdmission:
    """The budget every HLS view of this process shares (host and guest renditions)."""

    __slots__ = ("bucket", "held", "max_held", "shed")

    def __init__(
        self,
        answers_per_second: float,
        max_held: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bucket = TokenBucket(answers_per_second, clock)
        self.max_held = max_held  # 0: no limit
        self.held = 0
        self.shed = {RATE: 0, HELD: 0}

    def admit(self) -> bool:
        """Whether to answer a request; False (and counted) when over the rate."""
        if self.bucket.take():
            return True
        self.shed[RATE] += 1
        return False

    def hold(self) -> bool:
        """Take a place for a request about to be held (blocking reload, preload hint);
        False (and counted) when every place is taken. Give it back with `release`."""
        if self.max_held and self.held >= self.max_held:
            self.shed[HELD] += 1
            return False
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BUSY = b"too many HLS requests right now, retry in a second\n"
BUSY_HEADERS = [
    (b"content-type", b"text/plain; charset=utf-8"),
    (b"content-length", str(len(BUSY)).encode()),
    (b"cache-control", b"no-store"),
    (b"retry-after", b"1"),  # hls.js and Safari retry a 503
    (b"access-control-allow-origin", b"*"),
    (b"vary", b"Origin"),
]


class HlsGate:
    """Plain ASGI in front of the app: a request under `prefix` over the rate is answered
    503 here, before the app sees it (CORS preflights pass: they cost nothing)."""

    def __init__(self, inner: ASGIApp, admission: HlsAdmission, prefix: str = "/hls/") -> None:
        self.inner = inner
        self.admission = admission
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"].startswith(self.prefix)
            and scope["method"] != "OPTIONS"
            and not self.admission.admit()
        ):
            await send({"type": "http.response.start", "status": 503, "headers": BUSY_HEADERS})
            await send({"type": "http.response.body", "body": BUSY})
            return
        await self.inner(scope, receive, send)
