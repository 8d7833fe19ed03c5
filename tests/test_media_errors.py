"""Malformed WHIP and WHEP offers are refused with 400 and a message written for the
caller: never a 500, never the text of the exception aiortc raised inside (that goes to
the server's log)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCPeerConnection
from quart import Quart
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.services import Services
from tests.media_helpers import CounterVideoTrack, answer, make_publisher, make_viewer

pytestmark = pytest.mark.usefixtures("loopback_candidates")

SDP = {"Content-Type": "application/sdp"}
LEAKS = re.compile(r"\w*(Error|Exception)\b|StopIteration|KeyError|Traceback|None is not")


def without(sdp: str, *prefixes: str) -> str:
    return "\r\n".join(line for line in sdp.split("\r\n") if not line.startswith(prefixes))


def malformed(offer: str) -> dict[str, bytes]:
    """Ways an offer (`offer`, a good one with two sections) goes wrong, by name."""
    assert offer.count("m=") == 2 and "a=mid:1" in offer and "a=setup:actpass" in offer
    bad = {
        "truncated in half": offer[: len(offer) // 2],
        "truncated inside a line": offer[: offer.index("a=fingerprint") + 20],
        "no m-lines": offer[: offer.index("m=")],
        "unsupported codecs only": re.sub(r"(H264|VP8|opus)/", "XYZ1/", offer),
        "no ICE credentials": without(offer, "a=ice-ufrag", "a=ice-pwd"),
        "no DTLS fingerprint": without(offer, "a=fingerprint"),
        "a broken a=setup": offer.replace("a=setup:actpass", "a=setup:bogus"),
        "a broken rtpmap": offer.replace("a=rtpmap:", "a=rtpmap:x"),
        "an empty mid": offer.replace("a=mid:0", "a=mid:"),
        "two sections with one mid": offer.replace("a=mid:1", "a=mid:0"),
        # Passes every check before aiortc, which then refuses it: its words stay here.
        "no rtcp-mux": without(offer, "a=rtcp-mux"),
    }
    out = {name: text.encode() for name, text in bad.items()}
    out["garbage bytes"] = os.urandom(400)
    out["v=0 then garbage bytes"] = b"v=0\r\n" + bytes(range(1, 256))
    out["v=0 then nonsense"] = b"v=0\r\nm=\r\na=\r\n" * 3
    return out


@pytest.fixture
async def show(services: Services) -> shows.Show:
    show_id = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    show = await shows.get_show(services.db, show_id)
    assert show is not None
    return show


@pytest.fixture
async def live(client: QuartClient, show: shows.Show) -> AsyncIterator[RTCPeerConnection]:
    """A publisher on air, so WHEP offers reach the negotiation."""
    pc, offer = await make_publisher(CounterVideoTrack(160, 90, 15))
    headers = {**SDP, "Authorization": f"Bearer {show.stream_key}"}
    reply = await client.post(f"/whip/{show.id}", headers=headers, data=offer.encode())
    assert reply.status_code == 201
    await answer(pc, await reply.get_data(as_text=True))
    plane = client.app.extensions["vitrine.live"].plane
    for _ in range(200):
        if plane.is_publishing(str(show.id)):
            break
        await asyncio.sleep(0.05)
    yield pc
    await pc.close()


async def refused(client: QuartClient, path: str, body: bytes, headers: dict[str, str]) -> str:
    reply = await client.post(path, headers=headers, data=body)
    text = await reply.get_data(as_text=True)
    assert reply.status_code == 400, (reply.status_code, text)
    return text


async def test_malformed_offers_answer_400_and_leak_nothing(
    app: Quart,
    client: QuartClient,
    show: shows.Show,
    live: RTCPeerConnection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publisher, publisher_offer = await make_publisher(CounterVideoTrack(160, 90, 15))
    viewer, viewer_offer, _ = await make_viewer()
    whip = {**SDP, "Authorization": f"Bearer {show.stream_key}"}
    caplog.set_level(logging.INFO)
    try:
        cases = [
            (f"/whip/{show.id}", whip, malformed(publisher_offer)),
            (f"/whep/{show.id}", SDP, malformed(viewer_offer)),
        ]
        for path, headers, bodies in cases:
            for name, body in bodies.items():
                text = await refused(client, path, body, headers)
                assert text.startswith("bad offer: "), (path, name, text)
                assert not LEAKS.search(text), (path, name, text)
    finally:
        await publisher.close()
        await viewer.close()
    plane = app.extensions["vitrine.live"].plane
    # The refusals left the show as it was: its publisher on air, no viewer added.
    assert plane.is_publishing(str(show.id)) and plane.viewer_count(str(show.id)) == 0
    # What aiortc said is in the server's log, for the operator.
    assert "offer was refused" in caplog.text
