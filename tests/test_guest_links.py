"""Guest links over HTTP: made by the show's host, working once, dying when revoked or
expired; every refusal a clear 4xx."""

from __future__ import annotations

from quart import Quart
from quart.testing import QuartClient

from appliance.accounts.users import create_user
from appliance.catalog import shows
from appliance.live import guests
from appliance.services import Services
from tests.conftest import PASSWORD, sign_in, sign_in_as

SDP = {"Content-Type": "application/sdp"}


async def live_show(services: Services, host_id: int | None = None) -> int:
    show_id = await shows.create_show(
        services.db, shows.ShowData("With a guest", "", 2_000_000_000, 60, host_id)
    )
    await shows.go_live(services.db, show_id)
    return show_id


async def new_link(client: QuartClient, show_id: int, csrf: str) -> str:
    r = await client.post(f"/studio/{show_id}/guest/link", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, await r.get_data(as_text=True)
    body = await r.get_json()
    assert body["link"]["joined"] is False
    return str(body["url"]).split(f"/guest/{show_id}/", 1)[1]


async def test_the_host_makes_a_link_that_works_once(
    app: Quart, client: QuartClient, services: Services
) -> None:
    host = await create_user(services.db, "host@example.com", "Hana", "host", PASSWORD)
    show_id = await live_show(services, host.id)
    csrf = await sign_in_as(client, host.email)
    token = await new_link(client, show_id, csrf)
    # Only the hash is stored.
    stored = await services.db.fetchval("SELECT token_hash FROM guest_links")
    assert stored == guests.digest(token) and token not in stored

    guest = app.test_client()
    page = await guest.get(f"/guest/{show_id}/{token}")
    assert page.status_code == 200
    html = await page.get_data(as_text=True)
    assert f'data-whip-url="/whip/{show_id}/guest"' in html and "/static/js/guest.js" in html
    assert page.headers["Cache-Control"] == "no-store"
    claim = page.headers["Set-Cookie"]
    assert f"vitrine_guest_{show_id}=" in claim and "HttpOnly" in claim

    # The first join binds the link to this page's claim.
    link = await guests.find(services.db, show_id, token)
    assert link is not None
    value = claim.split("=", 1)[1].split(";", 1)[0]
    assert await guests.join(services.db, link, value)
    assert await guests.join(services.db, link, value)  # the same phone reconnecting
    assert not await guests.join(services.db, link, "another phone")
    assert (await guest.get(f"/guest/{show_id}/{token}")).status_code == 200  # a reload
    other = app.test_client()
    assert (await other.get(f"/guest/{show_id}/{token}")).status_code == 403
    refused = await other.post(
        f"/whip/{show_id}/guest",
        data=b"v=0\r\n",
        headers={**SDP, "Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 401

    # Removing the guest kills the link, for the guest's own phone too.
    r = await client.post(f"/studio/{show_id}/guest/remove", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200
    assert (await guest.get(f"/guest/{show_id}/{token}")).status_code == 403


async def test_wrong_expired_and_revoked_links(
    app: Quart, client: QuartClient, services: Services
) -> None:
    csrf = await sign_in(client, services, "admin")
    show_id = await live_show(services)
    visitor = app.test_client()
    assert (await visitor.get(f"/guest/{show_id}/not-a-token")).status_code == 404
    assert (await visitor.get(f"/guest/{show_id}/{'x' * 500}")).status_code == 404
    token = await new_link(client, show_id, csrf)
    assert (await visitor.get(f"/guest/{show_id + 1}/{token}")).status_code == 404
    # A new link revokes the unused one.
    fresh = await new_link(client, show_id, csrf)
    assert (await visitor.get(f"/guest/{show_id}/{token}")).status_code == 403
    assert (await visitor.get(f"/guest/{show_id}/{fresh}")).status_code == 200
    await services.db.execute("UPDATE guest_links SET expires_at = 0")
    assert (await visitor.get(f"/guest/{show_id}/{fresh}")).status_code == 404
    r = await visitor.post(
        f"/whip/{show_id}/guest",
        data=b"v=0\r\n",
        headers={**SDP, "Authorization": f"Bearer {fresh}"},
    )
    assert r.status_code == 401
    r = await visitor.post(f"/whip/{show_id}/guest", data=b"v=0\r\n", headers=SDP)
    assert r.status_code == 401


async def test_controls_need_the_show_and_good_values(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show_id = await live_show(services)
    outsider = app.test_client()
    r = await outsider.post(f"/studio/{show_id}/guest/layout", form={"layout": "side"})
    assert r.status_code in (302, 400, 401, 403)  # not signed in (nor a CSRF token)
    moderator = app.test_client()
    csrf = await sign_in(moderator, services, "moderator")
    r = await moderator.post(f"/studio/{show_id}/guest/link", headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403  # a moderator may not bring a guest on

    csrf = await sign_in(client, services, "admin")
    headers = {"X-CSRF-Token": csrf}
    r = await client.post(
        f"/studio/{show_id}/guest/layout", form={"layout": "huge"}, headers=headers
    )
    assert r.status_code == 400
    r = await client.post(
        f"/studio/{show_id}/guest/layout", form={"layout": "inset"}, headers=headers
    )
    assert r.status_code == 200 and (await r.get_json())["layout"] == "inset"
    assert (await client.get(f"/api/shows/{show_id}/stage")).status_code == 200
    stage = await (await app.test_client().get(f"/api/shows/{show_id}/stage")).get_json()
    assert stage == {"type": "stage", "guest": False, "layout": "inset", "hls": False}
    r = await client.post(f"/studio/{show_id}/guest/mute", headers=headers)
    assert r.status_code == 200 and (await r.get_json())["muted"] is True
    r = await client.post(f"/studio/{show_id}/guest/dance", headers=headers)
    assert r.status_code == 404
    assert (await client.get("/api/shows/999/stage")).status_code == 404
    # No guest on the stage: no HLS rendition of the guest either (never a 500).
    r = await app.test_client().get(f"/hls/{show_id}/guest/index.m3u8")
    assert r.status_code == 404
    r = await app.test_client().get(f"/hls/{show_id}/guest/index.m3u8?_HLS_msn=x")
    assert r.status_code == 400
    r = await app.test_client().post(f"/whep/{show_id}/guest", data=b"v=0\r\n", headers=SDP)
    assert r.status_code in (400, 409)  # no guest on the stage (or a bad offer): never 500
    await shows.end_show(services.db, show_id)
    r = await client.post(f"/studio/{show_id}/guest/link", headers=headers)
    assert r.status_code == 409
