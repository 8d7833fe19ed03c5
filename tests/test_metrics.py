"""/metrics: off by default, behind a bearer token or an allowed address, and scraped
with prometheus-client's own parser from a real server with a show on air (a WHIP
publisher, a WHEP viewer), a live-room socket that chats and sends hearts, and KPI
events. Every metric the Grafana dashboard uses is in that scrape."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from quart import Quart

from appliance.app import create_app
from appliance.config import load_config
from tests.conftest import ROOT, LiveServer, launch, stop
from tests.media_helpers import CounterVideoTrack
from tests.test_media_http import Show, publish, until, watch
from tests.test_room import Room

TOKEN = "s3cret-metrics-token-for-tests"
DASHBOARD = ROOT / "deploy" / "grafana-vitrine.json"


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], through prometheus-client's parser."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict, name: str, **labels: str) -> float:
    for have, v in found.get(name, []):
        if all(have.get(k) == want for k, want in labels.items()):
            return float(v)
    raise AssertionError(f"no {name} {labels} in {sorted(found)}")


async def app_with(tmp_path: Path, **settings: str) -> AsyncIterator[Quart]:
    overrides = {"media.workers": "0", "storage.data_dir": str(tmp_path / "data"), **settings}
    app = create_app(load_config(environ={}, overrides=overrides))
    async with app.test_app():
        yield app


async def test_metrics_are_off_by_default(tmp_path: Path) -> None:
    async for app in app_with(tmp_path):
        client = app.test_client()
        response = await client.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert response.status_code == 404


async def test_metrics_need_the_token(tmp_path: Path) -> None:
    async for app in app_with(tmp_path, **{"metrics.token": TOKEN}):
        client = app.test_client()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 401, headers
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert TOKEN not in await response.get_data(as_text=True)
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        found = samples(await response.get_data(as_text=True))
        assert value(found, "vitrine_data_disk_free_bytes") > 0
        # The failed scrapes above were counted by route class and status.
        assert value(found, "vitrine_http_requests_total", route="metrics", status="401") == 3


async def test_metrics_settings_are_checked(tmp_path: Path) -> None:
    from appliance.config import ConfigError

    with pytest.raises(ConfigError, match=r"metrics\.allow"):
        load_config(environ={"VITRINE_METRICS_ALLOW": "10.0.0.0/8, nonsense"})


@pytest.mark.usefixtures("loopback_candidates")
async def test_a_scrape_of_a_show_on_air(tmp_path: Path) -> None:
    server = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {"VITRINE_METRICS_TOKEN": TOKEN, "VITRINE_METRICS_ALLOW": "127.0.0.1"},
    )
    pcs = []
    room = None
    try:
        created = json.loads(
            server.cli("shows", "create", "--title", "Metrics", "--starts-at", "2030-01-01T10:00")
        )
        show = Show(server, created["id"], created["stream_key"])
        sid = str(show.id)
        pc, _ = await publish(show, CounterVideoTrack(320, 180, 15))
        pcs.append(pc)
        await until(lambda: show.status()["publishing"])
        viewer, _, _tracks = await watch(show)
        pcs.append(viewer)
        await until(lambda: show.status().get("viewers", 0) >= 1)
        room = Room(server, show.id)
        ana = await room.join("Ana", viewer=secrets.token_urlsafe(16))
        await ana.send(type="chat", text="hello metrics")
        await ana.wait("chat")
        await ana.send(type="heart", count=3)
        for kind in ("join", "heartbeat", "product_click"):
            body = {"show": show.id, "kind": kind}
            if kind == "product_click":
                body["props"] = {"product": 424242}
            post_event(server, body)
        await asyncio.sleep(2.5)  # packets flow; the event log is written

        # An allowed address needs no token.
        found = samples(scrape(server))
        assert value(found, "vitrine_viewers", show=sid, path="webrtc") == 1
        assert value(found, "vitrine_viewers", show=sid, path="room") == 1
        assert value(found, "vitrine_publishers", show=sid) == 1
        received = value(found, "vitrine_relay_packets_received_total", show=sid, kind="video")
        forwarded = value(found, "vitrine_relay_packets_forwarded_total", show=sid, kind="video")
        assert received > 10 and forwarded > 10
        assert value(found, "vitrine_relay_bytes_forwarded_total", show=sid, kind="video") > 1000
        assert value(found, "vitrine_relay_packets_dropped_total", show=sid, kind="video") >= 0
        assert value(found, "vitrine_room_connections", show=sid) == 1
        assert value(found, "vitrine_room_chat_messages_total", show=sid) == 1
        assert value(found, "vitrine_room_hearts_total", show=sid) == 3
        assert value(found, "vitrine_kpi_events_ingested_total", kind="join") >= 1
        assert value(found, "vitrine_kpi_events_ingested_total", kind="chat") == 1
        assert value(found, "vitrine_kpi_events_written_total") >= 4
        assert value(found, "vitrine_kpi_events_dropped_total") == 0
        assert value(found, "vitrine_recording", show=sid) == 1
        assert value(found, "vitrine_recording_bytes_total", show=sid) > 1000
        assert value(found, "vitrine_data_disk_free_bytes") > 0
        assert value(found, "process_cpu_seconds_total") > 0
        assert value(found, "vitrine_http_requests_total", route="whip", status="201") == 1
        assert value(found, "vitrine_http_requests_total", route="api", status="204") == 3
        assert value(found, "vitrine_room_tick_lag_seconds") >= 0
        # Forwarded keeps growing: a counter, read again at the next scrape.
        await asyncio.sleep(1.0)
        later = samples(scrape(server, TOKEN))
        assert (
            value(later, "vitrine_relay_packets_forwarded_total", show=sid, kind="video")
            > forwarded
        )

        # Every name the Grafana dashboard uses is in the scrape.
        names = dashboard_metric_names()
        assert len(names) >= 20
        missing = sorted(n for n in names if n not in found)
        assert not missing, missing
    finally:
        if room is not None:
            await room.close()
        for pc in pcs:
            await pc.close()
        stop(server)


def test_an_address_not_allowed_needs_the_token(tmp_path: Path) -> None:
    server = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {"VITRINE_METRICS_TOKEN": TOKEN, "VITRINE_METRICS_ALLOW": "10.1.2.3"},
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(server)
        refused.value.close()
        assert refused.value.code == 401
        assert "vitrine_build_info" in scrape(server, TOKEN)
    finally:
        stop(server)


def scrape(server: LiveServer, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(server.url + "/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=10) as r:
        return r.read().decode()


def post_event(server: LiveServer, body: dict) -> None:
    request = urllib.request.Request(
        server.url + "/api/events",
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "text/plain;charset=UTF-8",
            "Cookie": f"vitrine_viewer={secrets.token_urlsafe(16)}",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        assert r.status == 204


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    names = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names |= set(re.findall(r"\b((?:vitrine|process)_[a-z_]+)\b", target["expr"]))
    return names


@pytest.mark.usefixtures("loopback_candidates")
async def test_the_guests_relay_is_counted(tmp_path: Path) -> None:
    """A guest's relay (its own media plane) is in the scrape: its viewers under the paths
    guest_webrtc and guest_hls, its traffic and publisher labelled relay="guest"."""
    async for app in app_with(tmp_path, **{"metrics.token": TOKEN}):
        await scrape_with_a_guest(app)


async def scrape_with_a_guest(app: Quart) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from appliance.catalog import shows
    from appliance.live.guest_stage import Guests
    from tests.media_helpers import answer, make_publisher
    from tests.test_media_plane import wait_for

    stage: Guests = app.extensions["vitrine.guests"]
    show_id = await shows.create_show(
        stage.db, shows.ShowData("Guest metrics", "", 2_000_000_000, 60, None)
    )
    await shows.go_live(stage.db, show_id)
    sid = str(show_id)
    publisher, offer = await make_publisher(CounterVideoTrack(320, 180, 15))
    viewer = RTCPeerConnection()
    try:
        _, sdp = await stage.plane.publish(sid, offer.encode())
        await answer(publisher, sdp)
        await wait_for(lambda: stage.plane.is_publishing(sid))
        viewer.addTransceiver("video", direction="recvonly")
        viewer.addTransceiver("audio", direction="recvonly")
        await viewer.setLocalDescription(await viewer.createOffer())
        _, sdp = await stage.plane.watch(sid, viewer.localDescription.sdp.encode())
        await viewer.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        await wait_for(lambda: stage.plane.viewer_count(sid) == 1)
        await asyncio.sleep(1.5)  # packets flow to the viewer

        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = await app.test_client().get("/metrics", headers=headers)
        found = samples(await response.get_data(as_text=True))
        assert value(found, "vitrine_viewers", show=sid, path="guest_webrtc") == 1
        assert not [
            labels
            for labels, _ in found["vitrine_viewers"]
            if labels["show"] == sid and labels["path"] == "webrtc"
        ], "the host's relay has no viewer of this show"
        assert value(found, "vitrine_publishers", show=sid, relay="guest") == 1
        video = {"show": sid, "kind": "video", "relay": "guest"}
        assert value(found, "vitrine_relay_packets_forwarded_total", **video) > 10
        assert value(found, "vitrine_viewers_connecting", show=sid, relay="guest") == 0
    finally:
        await viewer.close()
        await publisher.close()
