"""The show on emulated networks: Vitrine, a publisher and viewers each in a network
namespace, with the profile's bandwidth, loss, delay and jitter on each link
(tests/netlab.py). What is measured is what a viewer decodes: every frame carries its
number and send time. Select with `-m netlab`; skipped where namespaces cannot be made.
"""

from __future__ import annotations

import html
import json
import re
import secrets
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.netlab import (
    PROFILES,
    TURN_IP,
    Agent,
    Lab,
    http,
    lip_sync,
    now_ms,
    sh,
    summarise,
    unavailable,
    wait_playing,
)

REASON = unavailable()
pytestmark = [
    pytest.mark.netlab,
    pytest.mark.skipif(REASON is not None, reason=f"network lab: {REASON}"),
]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    running = Lab(tmp_path / "lab")
    try:
        yield running
    finally:
        running.close()


def watch_for(viewer: Agent, seconds: float) -> dict[str, Any]:
    wait_playing(viewer)
    start = viewer.ask(op="report")["now_ms"]
    time.sleep(seconds)
    report = viewer.ask(op="report", since_ms=start)
    figures = summarise(report["samples"], (report["now_ms"] - start) / 1000)
    figures["state"] = report["state"]
    return figures


def go_live(lab: Lab, publisher_profile: str) -> tuple[int, Agent]:
    server = lab.start_server()
    show, key = server.create_show()
    publisher = lab.publisher(lab.add_host("pub", PROFILES[publisher_profile]), show, key)
    return show, publisher


def test_lab_is_what_the_profiles_say(lab: Lab) -> None:
    """The links really are shaped: a 4G host's datagrams take the forwarder's path and
    delay, and the namespaces go away with the lab."""
    show, _publisher = go_live(lab, "4g")
    viewer = lab.viewer(lab.add_host("viewer", PROFILES["clean"]), show)
    figures = watch_for(viewer, 3)
    assert figures["frames"] > 30, figures
    forwarder = lab.hosts[1].agents[0].ask(op="report")
    assert forwarder["counts"]["up"] > 100 and forwarder["counts"]["down"] > 10, forwarder
    # 25 ms each way through the forwarder: no frame arrives sooner than that.
    assert figures["delay_p50"] >= 25, figures
    names = list(lab.namespaces)
    lab.close()
    listed = sh("ip", "netns", "list")
    assert not any(name in listed for name in names)


def test_clean_links_play_live(lab: Lab) -> None:
    """Nothing in the way: every frame, glass-to-glass well under 250 ms p95."""
    show, _publisher = go_live(lab, "clean")
    figures = watch_for(lab.viewer(lab.add_host("viewer", PROFILES["clean"]), show), 6)
    assert figures["fps"] > 25, figures
    assert figures["delay_p95"] < 250, figures
    assert figures["freezes"] == 0, figures


def test_clean_and_4g_play_with_bounded_delay(lab: Lab) -> None:
    """A seller on 4G (50 ms RTT, 1% loss, 10 ms jitter, 4 Mbit/s up), a viewer on a
    clean link and one on 4G: both play smoothly. The issue's target is 400 ms p95
    (scripts/bench networks measures it); on this shared two-core machine the test
    allows 500 ms, far from the seconds an unrepaired or flooded link gives."""
    show, _publisher = go_live(lab, "4g")
    viewers = [
        lab.viewer(lab.add_host("clean", PROFILES["clean"]), show),
        lab.viewer(lab.add_host("phone", PROFILES["4g"]), show),
    ]
    for viewer in viewers:
        wait_playing(viewer)
    time.sleep(1)
    start = viewers[0].ask(op="report")["now_ms"]
    time.sleep(12)
    seen = []
    for viewer in viewers:
        report = viewer.ask(op="report", since_ms=start)
        seen.append(summarise(report["samples"], (report["now_ms"] - start) / 1000))
    asked = _publisher.ask(op="report")
    for figures in seen:
        assert figures["fps"] > 20, (seen, asked)
        assert figures["delay_p95"] < 500, (seen, asked)
        assert (figures["longest_gap_ms"] or 0) < 700, (seen, asked)


def test_viewer_behind_nat_plays(lab: Lab) -> None:
    """A viewer whose address is masqueraded by a router: its host candidate is
    unreachable, the server learns it as a peer-reflexive candidate, and it plays."""
    show, _publisher = go_live(lab, "clean")
    host = lab.add_host("natted", PROFILES["nat"])
    assert host.ip.startswith("198.19.")  # a private address the server cannot reach
    viewer = lab.viewer(host, show)
    figures = watch_for(viewer, 4)
    assert figures["state"] == "connected"
    assert figures["fps"] > 20, figures


def test_udp_blocked_viewer_gets_no_media_and_frees_its_place(lab: Lab) -> None:
    """Without TURN a viewer whose UDP is blocked cannot play (HLS is its fallback);
    its session never connects and is closed after media.ice_connect_seconds."""
    server = lab.start_server({"VITRINE_MEDIA_ICE_CONNECT_SECONDS": "3"})
    show, key = server.create_show()
    lab.publisher(lab.add_host("pub", PROFILES["clean"]), show, key)
    viewer = lab.viewer(lab.add_host("blocked", PROFILES["udp-blocked"]), show)
    time.sleep(6)
    report = viewer.ask(op="report")
    assert report["samples"] == [] and report["connected_ms"] is None
    assert server.status(show)["viewers"] == 0


def test_viewers_resume_after_outage_and_reconnect(lab: Lab) -> None:
    """5 s without any UDP on the seller's link, then the phone publishes again (a new
    WHIP session): viewers play again within 3 s, without reconnecting themselves."""
    show, publisher = go_live(lab, "outage")
    viewer = lab.viewer(lab.add_host("viewer", PROFILES["clean"]), show)
    wait_playing(viewer)
    pub_host = lab.hosts[1]
    pub_host.blackout(True)
    time.sleep(5)
    pub_host.blackout(False)
    back = now_ms()  # the phone's link is back; it publishes again at once
    publisher.ask(op="reconnect")
    time.sleep(6)
    report = viewer.ask(op="report", since_ms=back)
    assert report["state"] == "connected"
    samples = report["samples"]
    assert samples, "the viewer got nothing after the publisher came back"
    resumed = samples[0]["at_ms"] - back
    assert resumed < 3000, resumed
    after = summarise([s for s in samples if s["at_ms"] >= back + 3000], 3)
    assert after["fps"] > 20, after


def test_narrow_lossy_uplink_keeps_the_delay_bounded(lab: Lab) -> None:
    """The issue's case: a seller on a 900 kbit/s uplink with 5% loss. The publisher
    starts above what the link carries; the relay's estimate must bring it under, and
    lost packets must be repaired without flooding the link, so viewers stay live
    (glass-to-glass p95 under 1 s) instead of falling seconds behind."""
    show, publisher = go_live(lab, "narrow")
    viewer = lab.viewer(lab.add_host("viewer", PROFILES["clean"]), show)
    wait_playing(viewer)
    # The publisher's first seconds, at 1 Mbit/s, overfill the link until the estimate
    # brings it down; packets lost then may be past its 128-packet resend history, and
    # an aiortc viewer waits 512 packets for one. The issue is the steady state.
    time.sleep(10)
    figures = watch_for(viewer, 20)
    asked = publisher.ask(op="report")
    assert figures["fps"] > 15, (figures, asked["retransmits"])
    assert figures["delay_p95"] < 1000, (figures, asked["retransmits"])


@pytest.mark.skipif(
    shutil.which("turnserver") is None or shutil.which("openssl") is None,
    reason="coturn and openssl are needed (Debian: apt-get install coturn openssl)",
)
def test_udp_blocked_viewer_plays_over_turn_tls(lab: Lab) -> None:
    """coturn serves TURN over TLS on 443 with a secret shared with Vitrine (the TURN
    REST convention, media.turn_secret): the show page hands the player short-lived
    credentials, and a viewer whose UDP is blocked plays through the relay."""
    secret = secrets.token_hex(16)
    certificate = lab.start_turn(secret)
    server = lab.start_server(
        {
            "VITRINE_MEDIA_ICE_SERVERS": f"turns:{TURN_IP}:443?transport=tcp",
            "VITRINE_MEDIA_TURN_SECRET": secret,
            "VITRINE_MEDIA_TURN_TTL_SECONDS": "600",
        }
    )
    show, key = server.create_show()
    lab.publisher(lab.add_host("pub", PROFILES["clean"]), show, key)
    host = lab.add_host("blocked", PROFILES["udp-blocked"])
    viewer = lab.viewer(host, show, page=True, trust=certificate)
    figures = watch_for(viewer, 4)
    assert figures["fps"] > 15, figures
    assert viewer.ask(op="report")["path"] == "relay"
    # The credentials are the page's own: user name "<expiry>:vitrine", expiring soon.
    code, page = http(host.ns, "GET", f"{server.url}/shows/{show}")
    assert code == 200 and secret not in page
    found = re.search(r'data-ice-servers="([^"]*)"', page)
    assert found is not None
    (turn,) = json.loads(html.unescape(found.group(1)))
    assert turn["urls"] == f"turns:{TURN_IP}:443?transport=tcp"
    expires, label = turn["username"].split(":")
    assert label == "vitrine" and 0 < int(expires) - time.time() <= 600


def _offsets_after(viewer: Agent, since: int) -> dict[str, Any]:
    report = viewer.ask(op="report", since_ms=since)
    return {**lip_sync(report["av"]), "pairs": report["av"]}


def test_lip_sync_holds_on_4g_and_after_an_outage(lab: Lab) -> None:
    """Audio and video stay within 80 ms of each other at the viewer, as its sender
    reports map them: with the seller on 4G (loss, jitter, NACK repairs), and after a
    5 s outage and a new WHIP session, when the relay's clocks start over."""
    show, publisher = go_live(lab, "4g")
    viewer = lab.viewer(lab.add_host("phone", PROFILES["4g"]), show)
    wait_playing(viewer)
    start = viewer.ask(op="report")["now_ms"]
    time.sleep(8)
    on_4g = _offsets_after(viewer, start)
    assert on_4g["markers"] >= 4, on_4g
    assert on_4g["av_abs_max_ms"] <= 80, on_4g
    pub_host = lab.hosts[1]
    pub_host.blackout(True)
    time.sleep(5)
    pub_host.blackout(False)
    publisher.ask(op="reconnect")
    back = now_ms()
    time.sleep(4)  # recovery: the viewer plays again within 3 s (tested above)
    start = now_ms()
    time.sleep(8)
    after = _offsets_after(viewer, start)
    assert after["markers"] >= 4, after
    assert after["av_abs_max_ms"] <= 80, (after, back)
