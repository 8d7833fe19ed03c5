"""Who may do what to which show (appliance/accounts/access.py), checked on every route that takes
a show id and every staff action of the live room, for every kind of person: the role
table of issue 12."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.accounts import access
from appliance.accounts.users import User, create_user
from appliance.catalog import shows
from appliance.room.handlers import STAFF_ONLY
from appliance.services import Services
from tests.conftest import PASSWORD, csrf_of, sign_in_as

PERSONAS = (
    "anonymous",
    "viewer",
    "other_host",
    "own_host",
    "moderator",
    "unassigned_moderator",
    "admin",
)
EDITORS = {"own_host", "admin"}
MODERATORS = {"own_host", "moderator", "admin"}
ADMIN = {"admin"}
# The stream key is a capability: a client with no session (OBS) that holds it publishes.
KEY_HOLDERS = {"anonymous", "viewer", "own_host", "admin"}


@dataclass
class Persona:
    name: str
    client: QuartClient
    token: str
    user: User | None


@dataclass
class Team:
    personas: dict[str, Persona]
    own_host: User
    moderator: User

    async def show(self, services: Services, title: str = "Spring") -> shows.Show:
        """A new show hosted by own_host, moderated by moderator."""
        show_id = await shows.create_show(
            services.db, shows.ShowData(title, "", 2_000_000_000, 60, self.own_host.id)
        )
        await shows.set_moderators(services.db, show_id, [self.moderator.id])
        show = await shows.get_show(services.db, show_id)
        assert show is not None
        return show


@pytest.fixture
async def team(app: Quart, services: Services) -> Team:
    users = {
        name: await create_user(
            services.db, f"{name}@example.com", name.replace("_", " ").title(), role, PASSWORD
        )
        for name, role in (
            ("other_host", "host"),
            ("own_host", "host"),
            ("moderator", "moderator"),
            ("unassigned_moderator", "moderator"),
            ("admin", "admin"),
        )
    }
    personas = {}
    for name in PERSONAS:
        client = app.test_client()
        if name == "viewer":  # a viewer of the shop: the cookie the show page sets, no account
            client.set_cookie("localhost", "vitrine_viewer", "v_viewer_0000000001")
        user = users.get(name)
        # Everyone has a form token, so what refuses them is the rule, not the CSRF check.
        token = await (sign_in_as(client, user.email) if user else csrf_of(client))
        personas[name] = Persona(name, client, token, user)
    return Team(personas, users["own_host"], users["moderator"])


def refused(status: int, location: str) -> bool:
    return status in (401, 403) or (status == 302 and location.startswith("/login"))


SAVE_FORM = {
    "title": "Renamed",
    "description": "",
    "starts_at": "2030-01-01T10:00",
    "duration_minutes": "60",
}
# (method, path after /{show id}, how to call, who may)
ROUTES: list[tuple[str, str, str, set[str]]] = [
    ("GET", "/admin/shows/{id}", "page", EDITORS),
    ("POST", "/admin/shows/{id}", "save", EDITORS),
    ("POST", "/admin/shows/{id}/rotate-key", "form", EDITORS),
    ("POST", "/admin/shows/{id}/end", "form", EDITORS),
    ("POST", "/admin/shows/{id}/delete", "form", ADMIN),
    ("POST", "/admin/shows/{id}/replay/auto-publish", "form", EDITORS),
    ("POST", "/admin/shows/{id}/replay/publish", "form", EDITORS),
    ("POST", "/admin/shows/{id}/replay/rename", "form", EDITORS),
    ("POST", "/admin/shows/{id}/replay/trim", "form", EDITORS),
    ("POST", "/admin/shows/{id}/replay/delete", "form", ADMIN),
    ("GET", "/studio/{id}", "page", MODERATORS),
    ("POST", "/studio/{id}/end", "header", EDITORS),
    ("GET", "/api/shows/{id}/status", "status", MODERATORS),
    ("GET", "/api/shows/{id}/media-stats", "page", MODERATORS),
    ("GET", "/admin/shows/{id}/kpis", "page", EDITORS),
    ("GET", "/admin/shows/{id}/events.csv", "page", EDITORS),
    ("GET", "/api/kpis/shows/{id}", "page", EDITORS),
    ("POST", "/whip/{id}", "whip", KEY_HOLDERS),
    ("DELETE", "/whip/{id}/no-such-session", "whip", KEY_HOLDERS),
]


async def call(p: Persona, method: str, path: str, how: str, show: shows.Show) -> Any:
    c = p.client
    if how in ("page", "status"):
        return await c.get(path)
    if how == "save":
        form = {**SAVE_FORM, "host_id": str(show.host_id), "csrf_token": p.token}
        return await c.post(path, form=form)
    if how == "form":
        return await c.post(path, form={"csrf_token": p.token, "title": "x", "start": "0"})
    if how == "header":
        return await c.post(path, headers={"X-CSRF-Token": p.token})
    assert how == "whip"
    headers = {"Authorization": f"Bearer {show.stream_key}", "Content-Type": "application/sdp"}
    return await c.open(path, method=method, headers=headers, data=b"v=0\r\n")


@pytest.mark.parametrize(("method", "template", "how", "allowed"), ROUTES)
async def test_every_show_route_for_every_person(
    services: Services, team: Team, method: str, template: str, how: str, allowed: set[str]
) -> None:
    answers = {}
    for name, persona in team.personas.items():
        show = await team.show(services)  # its own show: what one person does stays theirs
        response = await call(persona, method, template.format(id=show.id), how, show)
        body = await response.get_data(as_text=True)
        status = response.status_code
        assert status < 500, (name, body)
        if how == "status":
            answers[name] = "recording_problem" in json.loads(body)
        elif how == "whip":
            # Past the key check, the offer is refused (400) or the session unknown (404).
            assert status in (400, 401, 403, 404), (name, status, body)
            answers[name] = status in (400, 404)
        else:
            answers[name] = not refused(status, response.headers.get("Location", ""))
        if name not in EDITORS:
            # The stream key reaches only those who may publish, in any answer.
            after = await shows.get_show(services.db, show.id)
            keys = {show.stream_key, after.stream_key if after else show.stream_key}
            assert not any(k in body for k in keys), (name, template)
    assert {n for n, ok in answers.items() if ok} == allowed, answers


ROOM_ACTIONS: dict[str, dict[str, Any]] = {
    "pin_product": {"product": 999_999},
    "unpin_product": {},
    "start_offer": {"code": "LIVE10", "minutes": 5},
    "end_offer": {},
    "pin_message": {"id": 999_999},
    "unpin_message": {},
    "delete": {"id": 999_999},
    "mute": {"id": 999_999, "minutes": 5},
    "ban": {"id": 999_999},
    "slow_mode": {"seconds": 0},
    "set_chat": {"open": True},
    "answer": {"id": 999_999},
    "lift": {"id": 999_999},
    "add_codes": {"codes": ["EXTRA1"]},
    "start_poll": {"question": "Which colour?", "options": ["Red", "Blue"], "seconds": 30},
    "end_poll": {},
    "start_giveaway": {"prize": "A scarf", "entrants": "all"},
    "draw": {},
}


async def read_until(ws: Any, kind: str) -> list[dict[str, Any]]:
    """Every message the room sent, up to and including the first of `kind`."""
    seen: list[dict[str, Any]] = []
    while not any(m.get("type") == kind for m in seen):
        seen.extend(json.loads(await ws.receive()))
    return seen


def test_the_room_table_covers_every_staff_action() -> None:
    assert set(ROOM_ACTIONS) == STAFF_ONLY


async def test_every_room_staff_action_for_every_person(services: Services, team: Team) -> None:
    show = await team.show(services)
    staff: dict[str, bool] = {}
    acted: dict[str, set[str]] = {}
    for name, persona in team.personas.items():
        headers = {"Origin": "http://localhost"}
        async with persona.client.websocket(f"/ws/shows/{show.id}", headers=headers) as ws:
            # Quart's test connection skips the ASGI connect event a server sends first, and
            # the room socket (plain ASGI in front of Quart) waits for it.
            await ws._send_queue.put({"type": "websocket.connect"})
            await ws.send(json.dumps({"type": "hello", "v": 1, "name": None}))
            welcome = next(m for m in await read_until(ws, "state") if m["type"] == "welcome")
            staff[name] = welcome["staff"]
            acted[name] = set()
            for action, fields in ROOM_ACTIONS.items():
                await ws.send(json.dumps({"type": action, **fields}))
                await ws.send(json.dumps({"type": "ping"}))  # answered after the action
                answer = await read_until(ws, "pong")
                codes = {m.get("code") for m in answer if m["type"] == "notice"}
                if "not_allowed" not in codes:
                    acted[name].add(action)
                assert show.stream_key not in json.dumps(answer)
    assert {n for n, s in staff.items() if s} == MODERATORS, staff
    assert {n for n, a in acted.items() if a == STAFF_ONLY} == MODERATORS, acted
    assert {n for n, a in acted.items() if a} == MODERATORS, acted


async def test_the_rule_itself(services: Services, team: Team) -> None:
    show = await team.show(services)
    unhosted = await shows.get_show(
        services.db,
        await shows.create_show(
            services.db, shows.ShowData("Nobody's", "", 2_000_000_000, 60, None)
        ),
    )
    assert unhosted is not None
    who = {name: p.user for name, p in team.personas.items()}
    table = {
        action: {n for n in PERSONAS if await access.may(services.db, who[n], action, show)}
        for action in access.ACTIONS
    }
    assert table == {
        "view": MODERATORS,
        "edit": EDITORS,
        "publish": EDITORS,
        "moderate": MODERATORS,
        "assign": ADMIN,
        "delete": ADMIN,
        "kpis": EDITORS,
        "replay": EDITORS,
    }
    # A show with no host yet is the admins' alone: no host may take it.
    for action in access.ACTIONS:
        allowed = {n for n in PERSONAS if await access.may(services.db, who[n], action, unhosted)}
        assert allowed == ADMIN, action


async def test_moderators_and_hosts_see_only_their_shows(services: Services, team: Team) -> None:
    mine = await team.show(services, "Assigned spring")
    other = await shows.create_show(
        services.db, shows.ShowData("Someone else's autumn", "", 2_000_000_000, 60, None)
    )
    pages = {}
    for name in ("moderator", "unassigned_moderator", "own_host", "other_host", "admin"):
        client = team.personas[name].client
        pages[name] = await (await client.get("/admin/shows")).get_data(as_text=True)
        pages[name] += await (await client.get("/admin")).get_data(as_text=True)
    assert "Assigned spring" in pages["moderator"]
    assert "autumn" not in pages["moderator"]
    assert f"/studio/{mine.id}" in pages["moderator"]
    assert f'/admin/shows/{mine.id}"' not in pages["moderator"]
    assert "Assigned spring" not in pages["unassigned_moderator"]
    assert "Assigned spring" in pages["own_host"] and "autumn" not in pages["own_host"]
    assert "Assigned spring" not in pages["other_host"]
    assert "Assigned spring" in pages["admin"] and "autumn" in pages["admin"]
    assert other


async def test_a_host_cannot_take_another_hosts_show(services: Services, team: Team) -> None:
    show = await team.show(services)
    thief = team.personas["other_host"]
    assert thief.user is not None
    form = {**SAVE_FORM, "host_id": str(thief.user.id), "csrf_token": thief.token}
    response = await thief.client.post(f"/admin/shows/{show.id}", form=form)
    assert response.status_code == 403
    after = await shows.get_show(services.db, show.id)
    assert after is not None and after.host_id == team.own_host.id and after.title == "Spring"
    # The real host still runs the studio, with the key.
    host = team.personas["own_host"]
    page = await (await host.client.get(f"/studio/{show.id}")).get_data(as_text=True)
    assert show.stream_key in page
    # A host saving their own show cannot hand it on, nor pick moderators.
    form = {
        **SAVE_FORM,
        "host_id": str(thief.user.id),
        "moderators": str(team.personas["unassigned_moderator"].user.id),  # type: ignore[union-attr]
        "csrf_token": host.token,
    }
    response = await host.client.post(f"/admin/shows/{show.id}", form=form)
    assert response.status_code == 302
    after = await shows.get_show(services.db, show.id)
    assert after is not None and after.host_id == team.own_host.id and after.title == "Renamed"
    assert await shows.moderators_of(services.db, show.id) == [team.moderator.id]
    editor = await (await host.client.get(f"/admin/shows/{show.id}")).get_data(as_text=True)
    assert 'name="host_id"' not in editor and 'name="moderators"' not in editor
    # A show a host schedules is theirs, whoever the form names.
    form = {**SAVE_FORM, "host_id": str(thief.user.id), "csrf_token": host.token}
    response = await host.client.post("/admin/shows/new", form=form)
    assert response.status_code == 302
    new_id = int(response.headers["Location"].split("/")[3].split("?")[0])
    created = await shows.get_show(services.db, new_id)
    assert created is not None and created.host_id == team.own_host.id


async def test_admin_assigns_moderators(services: Services, team: Team) -> None:
    show = await team.show(services)
    admin = team.personas["admin"]
    unassigned = team.personas["unassigned_moderator"]
    assert unassigned.user is not None
    editor = await (await admin.client.get(f"/admin/shows/{show.id}")).get_data(as_text=True)
    assert f'name="moderators" value="{team.moderator.id}" checked' in editor
    assert f'name="moderators" value="{unassigned.user.id}">' in editor
    form = {
        **SAVE_FORM,
        "host_id": str(team.own_host.id),
        "moderators": str(unassigned.user.id),
        "csrf_token": admin.token,
    }
    assert (await admin.client.post(f"/admin/shows/{show.id}", form=form)).status_code == 302
    assert await shows.moderators_of(services.db, show.id) == [unassigned.user.id]
    assert (await unassigned.client.get(f"/studio/{show.id}")).status_code == 200
    moderator = team.personas["moderator"]
    assert (await moderator.client.get(f"/studio/{show.id}")).status_code == 403
    # Only moderators can be assigned; a host's id is refused with a message, not a 500.
    form["moderators"] = str(team.own_host.id)
    response = await admin.client.post(f"/admin/shows/{show.id}", form=form)
    assert response.status_code == 400
    assert "Choose one of the offered values." in await response.get_data(as_text=True)
    assert await shows.moderators_of(services.db, show.id) == [unassigned.user.id]


async def test_a_moderator_studio_has_no_key(services: Services, team: Team) -> None:
    show = await team.show(services)
    page = await (await team.personas["moderator"].client.get(f"/studio/{show.id}")).get_data(
        as_text=True
    )
    assert 'id="moderation"' in page
    assert show.stream_key not in page and "data-stream-key" not in page
    assert "data-whip-url" not in page and "studio.js" not in page
    assert f'href="/admin/shows/{show.id}"' not in page  # a page they may not open


async def test_the_kpi_trend_covers_only_the_readers_shows(services: Services, team: Team) -> None:
    mine = await team.show(services, "Hana's spring")
    theirs = await shows.create_show(
        services.db, shows.ShowData("Other autumn", "", 2_000_000_000, 60, None)
    )
    for show_id in (mine.id, theirs):
        await shows.go_live(services.db, show_id)
        await shows.end_show(services.db, show_id)

    async def trend(name: str) -> set[int]:
        client = team.personas[name].client
        body = await (await client.get("/api/kpis")).get_json()
        csv_text = await (await client.get("/admin/kpis.csv")).get_data(as_text=True)
        assert ("Other autumn" in csv_text) == (theirs in {s["show"] for s in body["shows"]})
        return {s["show"] for s in body["shows"]}

    assert await trend("own_host") == {mine.id}
    assert await trend("other_host") == set()
    assert await trend("admin") == {mine.id, theirs}
    assert (await team.personas["moderator"].client.get("/api/kpis")).status_code == 403
