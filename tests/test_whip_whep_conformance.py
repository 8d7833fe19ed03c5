"""WHIP (RFC 9725) and WHEP status codes and headers, and refusals that leave nothing behind."""

from __future__ import annotations

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.services import Services
from tests.media_helpers import CounterVideoTrack, make_publisher, make_viewer

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def show(services: Services) -> shows.Show:
    show_id = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    return await shows.get_show(services.db, show_id)


def auth(show: shows.Show) -> dict[str, str]:
    return {**SDP, "Authorization": f"Bearer {show.stream_key}"}


def plane(app: Quart):
    return app.extensions["vitrine.live"].plane


async def test_options_answers_with_cors(client: QuartClient, show: shows.Show) -> None:
    for kind in ("whip", "whep"):
        r = await client.options(f"/{kind}/{show.id}")
        assert r.status_code == 204
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "Location" in r.headers["Access-Control-Expose-Headers"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (SDP, b"v=0\r\n", 401),  # no bearer token
        ({**SDP, "Authorization": "Bearer wrong"}, b"v=0\r\n", 401),
        ({**SDP, "Authorization": "Basic abc"}, b"v=0\r\n", 401),
    ],
)
async def test_whip_refuses_missing_or_wrong_keys(
    client: QuartClient, show: shows.Show, headers, body, status
) -> None:
    r = await client.post(f"/whip/{show.id}", headers=headers, data=body)
    assert r.status_code == status
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


GARBAGE = [
    b"hello",
    b"v=0\r\nthis is not sdp\r\n",
    b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
    b"v=0\r\n" + b"a=x\r\n" * 10 + b"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",
    "v=0\r\n\u0000\udcff".encode("utf-8", "surrogatepass"),
]


@pytest.mark.parametrize("body", GARBAGE)
async def test_garbage_offers_are_400_and_leave_nothing(
    app: Quart, client: QuartClient, show: shows.Show, body: bytes
) -> None:
    r = await client.post(f"/whip/{show.id}", headers=auth(show), data=body)
    assert r.status_code == 400, await r.get_data(as_text=True)
    assert "bad offer" in await r.get_data(as_text=True)
    assert plane(app).relays == {}


async def test_whip_content_type_size_show_and_method(
    app: Quart, client: QuartClient, show: shows.Show
) -> None:
    r = await client.post(
        f"/whip/{show.id}",
        headers={"Authorization": f"Bearer {show.stream_key}", "Content-Type": "text/plain"},
        data=b"v=0",
    )
    assert r.status_code == 415
    r = await client.post(
        f"/whip/{show.id}", headers=auth(show), data=b"v=0\r\n" + b"a=x\r\n" * 20_000
    )
    assert r.status_code == 413
    r = await client.post("/whip/999", headers=auth(show), data=b"v=0\r\n")
    assert r.status_code == 404
    r = await client.get(f"/whip/{show.id}")
    assert r.status_code == 405
    # a recvonly offer cannot publish
    viewer, offer, _ = await make_viewer()
    r = await client.post(f"/whip/{show.id}", headers=auth(show), data=offer.encode())
    await viewer.close()
    assert r.status_code == 400 and "sendonly" in await r.get_data(as_text=True)
    assert plane(app).relays == {}


async def test_whip_session_lifecycle(
    app: Quart, client: QuartClient, services: Services, show: shows.Show
) -> None:
    pc, offer = await make_publisher(CounterVideoTrack(320, 180, 15))
    try:
        r = await client.post(f"/whip/{show.id}", headers=auth(show), data=offer.encode())
        assert r.status_code == 201
        assert r.headers["Content-Type"] == "application/sdp"
        location = r.headers["Location"]
        assert location.startswith(f"/whip/{show.id}/") and r.headers["ETag"]
        answer = await r.get_data(as_text=True)
        assert answer.startswith("v=0") and "a=setup:" in answer and "H264" in answer
        no_key = {"Content-Type": "application/trickle-ice-sdpfrag"}
        assert (
            await client.patch(location, headers=no_key, data=b"a=ice-ufrag:x\r\n")
        ).status_code == 401
        assert (await client.delete(location)).status_code == 401
        assert (
            await client.delete(location, headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        key = {"Authorization": f"Bearer {show.stream_key}"}
        r = await client.patch(
            location, headers={**key, **no_key}, data=b"a=ice-ufrag:x\r\na=ice-pwd:y\r\n"
        )
        assert r.status_code == 405 and "DELETE" in r.headers["Allow"]
        assert (
            await client.delete(f"/whip/{show.id}/not-a-session", headers=key)
        ).status_code == 404
        assert (await client.delete(location, headers=key)).status_code == 200
        assert (await client.delete(location, headers=key)).status_code == 404
        assert plane(app).relays == {}
    finally:
        await pc.close()


async def test_whep_refusals(
    app: Quart, client: QuartClient, services: Services, show: shows.Show
) -> None:
    viewer, offer, _ = await make_viewer()
    await viewer.close()
    r = await client.post(f"/whep/{show.id}", headers=SDP, data=offer.encode())
    assert r.status_code == 409 and r.headers["Retry-After"]
    assert (
        await client.post(f"/whep/{show.id}", headers={"Content-Type": "text/plain"}, data=b"v=0")
    ).status_code == 415
    assert (await client.post(f"/whep/{show.id}", headers=SDP, data=b"nonsense")).status_code == 400
    assert (await client.post("/whep/4242", headers=SDP, data=offer.encode())).status_code == 404
    assert (await client.delete(f"/whep/{show.id}/nobody")).status_code == 404
    assert (await client.patch(f"/whep/{show.id}/nobody", data=b"")).status_code == 404
    await shows.end_show(services.db, show.id)
    assert (
        await client.post(f"/whep/{show.id}", headers=SDP, data=offer.encode())
    ).status_code == 409
    assert (
        await client.post(f"/whip/{show.id}", headers=auth(show), data=offer.encode())
    ).status_code == 409
    assert plane(app).relays == {}


async def test_status_api(client: QuartClient, show: shows.Show) -> None:
    r = await client.get(f"/api/shows/{show.id}/status")
    assert await r.get_json() == {"status": "scheduled", "publishing": False, "viewers": 0}
    assert (await client.get("/api/shows/999/status")).status_code == 404
