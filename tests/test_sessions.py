"""Server-side sessions: signing out, password and role changes end them for real.

Each test captures the session cookie a browser holds and replays it from another
client after the event that must end it, as someone who copied the cookie would.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.parse
import urllib.request

from quart import Quart
from quart.testing import QuartClient

from appliance.accounts import sessions
from appliance.accounts.users import create_user, get_user
from appliance.app import create_app
from appliance.config import Config
from appliance.services import Services
from tests.conftest import PASSWORD, LiveServer, csrf_of, sign_in
from tests.test_room import Room, staff_cookie

COOKIE = "vitrine_session"


def cookie_of(client: QuartClient) -> str:
    assert client.cookie_jar is not None
    values = [c.value for c in client.cookie_jar if c.name == COOKIE]
    assert values and values[0], "no session cookie"
    return str(values[0])


def client_with(app: Quart, cookie: str) -> QuartClient:
    other = app.test_client()
    other.set_cookie("localhost", COOKIE, cookie)
    return other


async def opens(app: Quart, cookie: str, path: str = "/admin/users") -> bool:
    response = await client_with(app, cookie).get(path)
    return response.status_code == 200


async def sign_in_as(client: QuartClient, email: str) -> None:
    token = await csrf_of(client)
    response = await client.post(
        "/login", form={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302


async def test_cookie_captured_before_logout_no_longer_opens_admin(
    app: Quart, client: QuartClient, admin: str
) -> None:
    captured = cookie_of(client)
    assert await opens(app, captured)
    response = await client.post("/logout", form={"csrf_token": admin})
    assert response.status_code == 302
    assert not await opens(app, captured)
    replay = await client_with(app, captured).get("/admin/users")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/login")


async def test_cookie_holds_a_token_and_the_database_only_its_hash(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    rows = await services.db.fetchall("SELECT id, user_agent FROM sessions")
    assert len(rows) == 1
    assert len(rows[0]["id"]) == 64 and rows[0]["id"] not in cookie_of(client)
    # A cookie from before server-side sessions (a bare user id, signed with the same key)
    # opens nothing.
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    forged = serializer.dumps({"user_id": 1})
    assert not await opens(app, forged)


async def test_logout_of_one_session_leaves_the_others(
    app: Quart, services: Services, client: QuartClient
) -> None:
    await create_user(services.db, "two@example.com", "Two", "admin", PASSWORD)
    laptop, phone = app.test_client(), app.test_client()
    await sign_in_as(laptop, "two@example.com")
    await sign_in_as(phone, "two@example.com")
    laptop_cookie, phone_cookie = cookie_of(laptop), cookie_of(phone)
    await laptop.post("/logout", form={"csrf_token": await csrf_of(laptop, "/admin")})
    assert not await opens(app, laptop_cookie)
    assert await opens(app, phone_cookie)


async def test_password_reset_by_an_admin_ends_the_users_sessions(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    target = await create_user(services.db, "reset@example.com", "Reset", "admin", PASSWORD)
    theirs = app.test_client()
    await sign_in_as(theirs, "reset@example.com")
    captured = cookie_of(theirs)
    assert await opens(app, captured)
    # Saving the row without a new password, role or activity change keeps the session.
    form = {"csrf_token": admin, "name": "Reset", "role": "admin", "active": "on"}
    assert (await client.post(f"/admin/users/{target.id}", form=form)).status_code == 302
    assert await opens(app, captured)
    form["password"] = "a brand new password"
    assert (await client.post(f"/admin/users/{target.id}", form=form)).status_code == 302
    assert not await opens(app, captured)
    # The admin who did it is still signed in.
    assert (await client.get("/admin/users")).status_code == 200


async def test_role_change_and_deactivation_end_sessions(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    target = await create_user(services.db, "role@example.com", "Role", "host", PASSWORD)
    theirs = app.test_client()
    await sign_in_as(theirs, "role@example.com")
    captured = cookie_of(theirs)
    assert await opens(app, captured, "/admin/products")
    form = {"csrf_token": admin, "name": "Role", "role": "moderator", "active": "on"}
    assert (await client.post(f"/admin/users/{target.id}", form=form)).status_code == 302
    assert not await opens(app, captured, "/admin/shows")
    assert (
        await services.db.fetchval("SELECT COUNT(*) FROM sessions WHERE user_id = ?", (target.id,))
        == 0
    )

    await sign_in_as(theirs, "role@example.com")
    captured = cookie_of(theirs)
    assert await opens(app, captured, "/admin/shows")
    form = {"csrf_token": admin, "name": "Role", "role": "moderator"}  # "active" unticked
    assert (await client.post(f"/admin/users/{target.id}", form=form)).status_code == 302
    assert not await opens(app, captured, "/admin/shows")
    # Reactivated, the old cookie stays dead: the row is gone, not just hidden.
    form["active"] = "on"
    assert (await client.post(f"/admin/users/{target.id}", form=form)).status_code == 302
    assert not await opens(app, captured, "/admin/shows")


async def test_sign_out_everywhere(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    target = await create_user(services.db, "every@example.com", "Every", "host", PASSWORD)
    cookies = []
    for _ in range(3):
        device = app.test_client()
        await sign_in_as(device, "every@example.com")
        cookies.append(cookie_of(device))
    page = await (await client.get("/admin/users")).get_data(as_text=True)
    assert f'action="/admin/users/{target.id}/sessions/end"' in page
    assert "3 open sessions" in page
    # CSRF applies: a cross-site form cannot sign people out.
    refused = await client.post(f"/admin/users/{target.id}/sessions/end", form={})
    assert refused.status_code == 400
    assert all([await opens(app, c, "/admin/products") for c in cookies])
    done = await client.post(f"/admin/users/{target.id}/sessions/end", form={"csrf_token": admin})
    assert done.status_code == 302 and "signed_out=1" in done.headers["Location"]
    assert not any([await opens(app, c, "/admin/products") for c in cookies])
    assert (await client.get("/admin/users")).status_code == 200
    assert (
        await client.post("/admin/users/99999/sessions/end", form={"csrf_token": admin})
    ).status_code == 404


async def test_sign_out_everywhere_needs_an_admin(
    app: Quart, client: QuartClient, services: Services
) -> None:
    token = await sign_in(client, services, "host")
    me = await services.db.fetchval("SELECT user_id FROM sessions")
    r = await client.post(f"/admin/users/{me}/sessions/end", form={"csrf_token": token})
    assert r.status_code == 403


async def test_deleting_a_user_deletes_their_sessions(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    target = await create_user(services.db, "gone@example.com", "Gone", "host", PASSWORD)
    theirs = app.test_client()
    await sign_in_as(theirs, "gone@example.com")
    r = await client.post(f"/admin/users/{target.id}/delete", form={"csrf_token": admin})
    assert r.status_code == 302
    assert await get_user(services.db, target.id) is None
    left = await services.db.fetchval(
        "SELECT COUNT(*) FROM sessions WHERE user_id = ?", (target.id,)
    )
    assert left == 0


async def test_changing_my_password_needs_the_current_one_and_ends_my_other_sessions(
    app: Quart, client: QuartClient, services: Services
) -> None:
    await create_user(services.db, "me@example.com", "Me", "moderator", PASSWORD)
    await sign_in_as(client, "me@example.com")
    other = app.test_client()
    await sign_in_as(other, "me@example.com")
    other_cookie = cookie_of(other)
    page = await client.get("/account/password")
    assert page.status_code == 200
    assert 'href="/account/password"' in await (await client.get("/admin")).get_data(as_text=True)
    token = await csrf_of(client, "/account/password")
    new = "another good password"
    wrong = await client.post(
        "/account/password",
        form={"csrf_token": token, "current": "not my password", "password": new, "confirm": new},
    )
    assert wrong.status_code == 400
    assert "not your current password" in await wrong.get_data(as_text=True)
    differ = await client.post(
        "/account/password",
        form={"csrf_token": token, "current": PASSWORD, "password": new, "confirm": new + "x"},
    )
    assert differ.status_code == 400
    assert await opens(app, other_cookie, "/admin/shows")
    ok = await client.post(
        "/account/password",
        form={"csrf_token": token, "current": PASSWORD, "password": new, "confirm": new},
    )
    assert ok.status_code == 302
    assert (await client.get("/account/password?saved=1")).status_code == 200
    assert not await opens(app, other_cookie, "/admin/shows")
    # The new password signs in; the old one does not.
    fresh = app.test_client()
    token = await csrf_of(fresh)
    old = await fresh.post(
        "/login", form={"email": "me@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert old.status_code == 400
    good = await fresh.post(
        "/login", form={"email": "me@example.com", "password": new, "csrf_token": token}
    )
    assert good.status_code == 302
    # Anonymous visitors are sent to sign in.
    anon = await app.test_client().get("/account/password")
    assert anon.status_code == 302 and anon.headers["Location"].startswith("/login")


async def test_expired_sessions_are_refused_and_pruned(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    captured = cookie_of(client)
    await services.db.execute("UPDATE sessions SET expires_at = ?", (int(time.time()) - 1,))
    assert not await opens(app, captured)
    assert await sessions.prune(services.db) == 1
    assert await services.db.fetchval("SELECT COUNT(*) FROM sessions") == 0


async def test_seen_at_is_written_at_most_once_a_minute(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    long_ago = int(time.time()) - 3600
    await services.db.execute("UPDATE sessions SET seen_at = ?", (long_ago,))
    assert (await client.get("/admin")).status_code == 200
    seen = await services.db.fetchval("SELECT seen_at FROM sessions")
    assert seen > long_ago
    await services.db.execute("UPDATE sessions SET seen_at = ?", (seen - 10,))
    assert (await client.get("/admin")).status_code == 200
    assert await services.db.fetchval("SELECT seen_at FROM sessions") == seen - 10


def sign_out(server: LiveServer, cookie: str) -> None:
    """POST /logout as a browser holding `cookie` would."""
    page = urllib.request.Request(server.url + "/admin", headers={"Cookie": cookie})
    html = urllib.request.urlopen(page).read().decode()
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    logout = urllib.request.Request(
        server.url + "/logout",
        data=urllib.parse.urlencode({"csrf_token": token}).encode(),
        headers={"Cookie": cookie},
    )
    urllib.request.urlopen(logout).read()


async def test_room_socket_forgets_staff_after_logout(live_server: LiveServer) -> None:
    """The live room reads the same sessions: a signed-out cookie is a viewer's."""
    live_server.cli("seed-demo")
    show = json.loads(
        live_server.cli("shows", "create", "--title", "S", "--starts-at", "2030-01-01T10:00")
    )["id"]
    cookie = staff_cookie(live_server, "admin")
    room = Room(live_server, int(show))
    try:
        staff = await room.join(cookie=cookie)
        assert staff.of("welcome")[0]["staff"] is True
        await asyncio.to_thread(sign_out, live_server, cookie)
        again = await room.join(cookie=cookie)
        assert again.of("welcome")[0]["staff"] is False
    finally:
        await room.close()
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0


async def test_setup_starts_a_session(app: Quart, client: QuartClient, services: Services) -> None:
    token = await csrf_of(client, f"/setup?token={services.setup_token}")
    form = {
        "token": services.setup_token,
        "csrf_token": token,
        "name": "Owner",
        "email": "owner@example.com",
        "password": PASSWORD,
    }
    assert (await client.post("/setup", form=form)).status_code == 302
    row = await services.db.fetchone("SELECT user_id, expires_at FROM sessions")
    assert row is not None and row["expires_at"] > time.time() + 13 * 24 * 3600
    assert await opens(app, cookie_of(client))


async def test_expired_sessions_are_pruned_at_start(config: Config) -> None:
    first = create_app(config)
    async with first.test_app():
        svc: Services = first.extensions["vitrine"]
        user = await create_user(svc.db, "old@example.com", "Old", "host", PASSWORD)
        await sessions.start(svc.db, user)
        await svc.db.execute("UPDATE sessions SET expires_at = 1")
        await sessions.start(svc.db, user)  # a sign-in drops expired rows too
        assert await svc.db.fetchval("SELECT COUNT(*) FROM sessions") == 1
        await svc.db.execute("UPDATE sessions SET expires_at = 1")
    again = create_app(config)
    async with again.test_app():
        svc = again.extensions["vitrine"]
        assert await svc.db.fetchval("SELECT COUNT(*) FROM sessions") == 0
