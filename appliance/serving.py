"""Hypercorn settings that the live room depends on."""

from __future__ import annotations

from typing import Any

import hypercorn.protocol.ws_stream as ws_stream
from hypercorn.config import Config as HypercornConfig
from wsproto.extensions import PerMessageDeflate

from appliance.config import Config

# How long a stopping server waits for its open connections (Hypercorn's graceful
# timeout). Room sockets and media sessions are ended by the app before that wait
# (appliance.app begin_shutdown), so it is only for HTTP requests still in flight, and for
# Hypercorn's own websocket ping task, which outlives a closed room socket by up to
# websocket_ping_interval: waited for in full, every stop would take that long. Bounded
# so that a stop, recordings and buffers closed, fits well within a container's 10 s.
GRACEFUL_SECONDS = 2.0


class _NoDeflate(PerMessageDeflate):
    """Declines permessage-deflate: compressing every chat frame for every viewer costs
    more than twice the CPU of sending it, for frames of a few hundred bytes."""

    def accept(self, offer: Any) -> None:
        return None


def refuse_websocket_compression() -> None:
    # Hypercorn always offers permessage-deflate to clients that ask; it has no setting.
    ws_stream.PerMessageDeflate = _NoDeflate  # type: ignore[misc]


def hypercorn_config(config: Config) -> HypercornConfig:
    hc = HypercornConfig()
    hc.bind = [f"{config.server.host}:{config.server.port}"]
    hc.backlog = config.server.backlog
    hc.accesslog = None
    hc.graceful_timeout = GRACEFUL_SECONDS
    # A viewer page reports a KPI heartbeat every kpis.heartbeat_seconds: keep its
    # connection open until the next one. Every connection closed and opened again
    # costs a TCP handshake and leaves the connection's objects to the garbage collector,
    # whose passes pause the live room (docs/perf.md).
    hc.keep_alive_timeout = config.kpis.heartbeat_seconds + 5
    hc.websocket_max_message_size = 64 * 1024
    hc.websocket_ping_interval = 20.0
    if not config.server.websocket_compression:
        refuse_websocket_compression()
    return hc
