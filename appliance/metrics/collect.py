"""The metrics, read from the running server's own counters when /metrics is asked.

Nothing on a hot path counts for Prometheus: the relay, recorders, rooms and event log
keep the counters they need anyway, and this Collector turns them into metric families
at scrape time (prometheus-client calls `collect` while generating the text). Every name
starts with `vitrine_`; deploy/grafana-vitrine.json uses only these (a test checks it).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from appliance.metrics.requests import RequestCounts

if TYPE_CHECKING:
    from prometheus_client import Metric

    from appliance.hls.admission import HlsAdmission
    from appliance.kpis.events import EventLog
    from appliance.room.hub import RoomHub
    from media.plane import MediaPlane


def vitrine_version() -> str:
    try:
        return version("vitrine")
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown"


@dataclass
class DiskFigures:
    """Disk figures, refreshed off the event loop before a scrape or the admin home."""

    free_bytes: int = 0
    replays_bytes: int = 0
    replays: int = 0

    @classmethod
    def read(cls, data_dir: Path) -> DiskFigures:
        folder = data_dir
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        figures = cls(free_bytes=shutil.disk_usage(folder).free)
        replays = data_dir / "replays"
        if replays.is_dir():
            for path in replays.iterdir():
                try:
                    if path.is_file():
                        figures.replays_bytes += path.stat().st_size
                        figures.replays += path.suffix == ".mp4"
                except OSError:  # deleted meanwhile
                    continue
        return figures


@dataclass
class Sources:
    """What the collector reads; all of it lives on the app."""

    plane: MediaPlane
    rooms: RoomHub
    events: EventLog
    data_dir: Path
    guest_plane: MediaPlane | None = None  # the guests' own relay (appliance/live/guest_stage)
    requests: RequestCounts = field(default_factory=RequestCounts)
    started_at: float = field(default_factory=time.time)
    disk: DiskFigures = field(default_factory=DiskFigures)
    hls: HlsAdmission | None = None  # the HLS answers' budget (services.hls_admission)


class VitrineCollector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        src = self.sources
        viewers = GaugeMetricFamily(
            "vitrine_viewers",
            "Viewers now, by path: webrtc (connected video sessions), hls (players that "
            "asked for the HLS playlist in the last 10 s), guest_webrtc and guest_hls (the "
            "same for the guest's picture) and room (people in the live room's chat, staff "
            "left out).",
            labels=["show", "path"],
        )
        yield from self._server(src)
        planes = [("host", src.plane)]
        if src.guest_plane is not None:
            planes.append(("guest", src.guest_plane))
        yield from self._media(planes, viewers)
        yield from self._rooms(src.rooms, viewers)
        yield viewers
        yield from self._events(src.events)
        yield from self._http(src.requests)
        if src.hls is not None:
            yield self._hls_shed(src.hls)

    def _server(self, src: Sources) -> Iterator[Metric]:
        info = InfoMetricFamily("vitrine_build", "The running Vitrine.")
        info.add_metric([], {"version": vitrine_version()})
        yield info
        yield GaugeMetricFamily(
            "vitrine_start_time_seconds", "When this server started (Unix time).", src.started_at
        )
        yield GaugeMetricFamily(
            "vitrine_data_disk_free_bytes",
            "Free disk space where the data directory is.",
            src.disk.free_bytes,
        )
        yield GaugeMetricFamily(
            "vitrine_replays_bytes", "Disk used by the replays' files.", src.disk.replays_bytes
        )

    def _media(
        self, planes: list[tuple[str, MediaPlane]], viewers: GaugeMetricFamily
    ) -> Iterator[Metric]:
        """The relays' figures, labelled `relay` host or guest (a guest's viewers are
        the same people as the host's: their paths are guest_webrtc and guest_hls)."""
        show = ["show", "relay"]
        kinds = ["show", "kind", "relay"]
        connecting = GaugeMetricFamily(
            "vitrine_viewers_connecting", "Video sessions still connecting.", labels=show
        )
        publishers = GaugeMetricFamily(
            "vitrine_publishers", "1 while the show's publisher is connected.", labels=show
        )
        made = {
            name: CounterMetricFamily(f"vitrine_relay_{name}", doc, labels=kinds)
            for name, doc in (
                ("packets_received", "RTP packets received from the publisher."),
                ("bytes_received", "Payload bytes received from the publisher."),
                ("packets_forwarded", "RTP packets sent to viewers (one per viewer)."),
                ("bytes_forwarded", "Payload bytes sent to viewers."),
                ("packets_dropped", "Packets not sent to a viewer (congested, no keyframe)."),
                ("packets_retransmitted", "Packets sent again to viewers who lost them (NACK)."),
            )
        }
        keys = {
            "packets_received": "packets_in",
            "bytes_received": "bytes_in",
            "packets_forwarded": "packets_out",
            "bytes_forwarded": "bytes_out",
            "packets_dropped": "dropped",
            "packets_retransmitted": "retransmitted",
        }
        recording = GaugeMetricFamily(
            "vitrine_recording",
            "1 while the show is being recorded, 0 when its recording stopped on an error.",
            labels=show,
        )
        recorded = CounterMetricFamily(
            "vitrine_recording_bytes", "Media bytes handed to the show's recording.", labels=show
        )
        recording_dropped = CounterMetricFamily(
            "vitrine_recording_dropped_packets",
            "Packets the recording could not keep up with (a slow disk).",
            labels=show,
        )
        for which, plane in planes:
            path = "" if which == "host" else f"{which}_"
            for name, relay in list(plane.relays.items()):
                viewers.add_metric([name, f"{path}webrtc"], plane.viewer_count(name))
                rendition = plane.rendition(name)
                if rendition is not None:
                    # Players that asked for the playlist lately (a cache in front: one).
                    clients = rendition.client_count(time.monotonic())
                    viewers.add_metric([name, f"{path}hls"], clients)
                connecting.add_metric([name, which], plane.connecting_count(name))
                publishers.add_metric([name, which], 1 if plane.is_publishing(name) else 0)
                for kind in relay.streams:
                    totals = plane.stream_totals(name, kind)
                    for metric, key in keys.items():
                        made[metric].add_metric([name, kind, which], totals[key])
            for name, recorder in list(plane.recorders.items()):
                if recorder.folder is None:
                    continue  # not recorded: it feeds the HLS rendition only
                recording.add_metric([name, which], 0 if recorder.error else 1)
                recorded.add_metric([name, which], recorder.bytes_in)
                recording_dropped.add_metric([name, which], recorder.dropped)
        yield connecting
        yield publishers
        yield from made.values()
        yield recording
        yield recorded
        yield recording_dropped

    def _rooms(self, hub: RoomHub, viewers: GaugeMetricFamily) -> Iterator[Metric]:
        show = ["show"]
        connections = GaugeMetricFamily(
            "vitrine_room_connections", "Open live-room sockets (viewers and staff).", labels=show
        )
        messages = CounterMetricFamily(
            "vitrine_room_chat_messages", "Chat messages posted in the live room.", labels=show
        )
        hearts = CounterMetricFamily(
            "vitrine_room_hearts", "Hearts sent in the live room.", labels=show
        )
        for show_id, room in list(hub.rooms.items()):
            label = [str(show_id)]
            connections.add_metric(label, len(room.clients))
            viewers.add_metric([str(show_id), "room"], room.viewer_count)
            messages.add_metric(label, room.chat_total)
            hearts.add_metric(label, room.hearts_total)
        lags = hub.health.lags
        yield connections
        yield messages
        yield hearts
        yield GaugeMetricFamily(
            "vitrine_room_tick_lag_seconds",
            "How late the live room's 100 ms tick woke, at most, over the last 10 s or less.",
            max(lags) if lags else 0.0,
        )

    def _events(self, events: EventLog) -> Iterator[Metric]:
        ingested = CounterMetricFamily(
            "vitrine_kpi_events_ingested",
            "KPI events accepted into the event log, by kind.",
            labels=["kind"],
        )
        for kind, count in sorted(events.ingested.items()):
            ingested.add_metric([kind], count)
        yield ingested
        yield CounterMetricFamily(
            "vitrine_kpi_events_dropped",
            "KPI events refused because the event log was full.",
            events.dropped,
        )
        yield CounterMetricFamily(
            "vitrine_kpi_events_written", "KPI events written to the database.", events.written
        )
        yield GaugeMetricFamily(
            "vitrine_kpi_events_pending", "KPI events waiting to be written.", events.pending
        )

    def _http(self, requests: RequestCounts) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "vitrine_http_requests",
            "HTTP answers by route class and status (the live-room websocket excluded).",
            labels=["route", "status"],
        )
        for (route, status), count in sorted(requests.counts.items()):
            family.add_metric([route, status], count)
        yield family

    def _hls_shed(self, admission: HlsAdmission) -> Metric:
        family = CounterMetricFamily(
            "vitrine_hls_shed",
            "HLS requests refused with 503 over the process's budget, by reason: rate "
            "(media.hls_answers_per_second) or held (media.hls_held_requests).",
            labels=["reason"],
        )
        for reason, count in sorted(admission.shed.items()):
            family.add_metric([reason], count)
        return family
