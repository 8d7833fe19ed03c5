"""The loop that writes a store's buffered records once a second and now and then runs
its clean-up pass: shared by the live room's store and the engagement store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable


async def flush_forever(
    flush: Callable[[], Awaitable[None]],
    tidy: Callable[[], Awaitable[object]],
    *,
    every: float,
    tidy_every: float,
    log: logging.Logger,
    what: str,
) -> None:
    """`flush()` every `every` seconds and `tidy()` every `tidy_every`; a failure is
    logged and tried again at the next turn, never ends the loop."""
    tidied_at = time.monotonic()
    while True:
        await asyncio.sleep(every)
        try:
            await flush()
            if time.monotonic() - tidied_at >= tidy_every:
                tidied_at = time.monotonic()
                await tidy()
        except Exception:
            log.exception("writing %s failed; will retry", what)
