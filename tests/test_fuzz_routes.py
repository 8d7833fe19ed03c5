"""No input answers 500: every route of the app, as an admin and as an anonymous client,
with path parameters, query strings and bodies drawn by hypothesis (forms, JSON, deep
nesting, garbage bytes, huge ints, unicode, control characters).

The app runs in-process with its lifespan (real SQLite file, real migrations) on an event
loop of this module's own, so hypothesis can drive it example by example. The routes are
read from the app's url_map: a new route is fuzzed without anyone adding it here.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from quart import Quart
from quart.testing import QuartClient

from appliance.app import create_app
from appliance.catalog import shows
from appliance.catalog.products import ProductData, create_product
from appliance.config import load_config
from appliance.services import Services
from tests.conftest import CSRF_RE, LiveServer, sign_in
from tests.helpers import PNG, file_field

# Per route, method and role; VITRINE_FUZZ_EXAMPLES=200 for a long hunt.
EXAMPLES = int(os.environ.get("VITRINE_FUZZ_EXAMPLES", "8"))
VIEWER = "v_fuzz_0123456789ab"

# Names of Python exceptions: none may reach an answer's body.
EXCEPTION_NAMES = sorted(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type)
    and issubclass(value, BaseException)
    and name not in ("BaseException", "Exception")
    and not name.endswith("Warning")
)
LEAK_RE = re.compile(r"\b(Traceback|" + "|".join(EXCEPTION_NAMES) + r")\b")
PARAM_RE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


def routes() -> list[tuple[str, str]]:
    """(rule, method) for every route of the app; OPTIONS only where it is all a rule
    answers (the automatic OPTIONS of the others is the same code for all)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(
            environ={}, overrides={"media.workers": "0", "storage.data_dir": f"{tmp}/data"}
        )
        app = create_app(config)
        found = set()
        for rule in app.url_map.iter_rules():
            methods = set(rule.methods or ()) - {"HEAD"}
            if methods != {"OPTIONS"}:
                methods.discard("OPTIONS")
            found.update((rule.rule, m) for m in methods)
    return sorted(found)


ROUTES = routes()

# -- what a request is made of ----------------------------------------------------------

no_surrogates = st.characters(exclude_categories=("Cs",))
text = st.text(no_surrogates, max_size=40)
nasty_text = st.sampled_from(
    [
        "",
        "0",
        "-1",
        "1e308",
        "NaN",
        str(2**63),
        str(10**30),
        "2030-01-01T10:00",
        "2030-02-30",
        "#d6336c",
        "EUR",
        "admin",
        "https://example.com/{sku}",
        "/%09/evil.example",
        "\x00",
        "\r\n",
        "=cmd|' /C calc'!A0",
        "<script>alert(1)</script>",
        "é" * 300,
        "x" * 5000,
    ]
)
scalar = st.one_of(text, nasty_text, st.integers(-(2**70), 2**70).map(str))
# Ids past SQLite's 64 bits come first: hypothesis tries the first choices most.
# Ids past SQLite's 64 bits come first (hypothesis tries the first choices most), then
# ids of the rows the harness made, so handlers get past their lookups too.
huge_ints = st.sampled_from([10**23, 1, 2**63, 2**63 - 1, 2, 0, 2**64, 2**31, 10**400])
int_param = st.one_of(huge_ints, st.integers(0, 3), st.integers(0, 2**70)).map(str)
segment = st.one_of(text, nasty_text, st.sampled_from(["..", ".", "a.png", "x.mp4", "%"]))

FIELDS = [
    "name",
    "email",
    "password",
    "new_password",
    "current_password",
    "confirm",
    "title",
    "description",
    "starts_at",
    "duration_minutes",
    "price",
    "currency",
    "sku",
    "stock",
    "product_url",
    "cart_url",
    "role",
    "active",
    "next",
    "host",
    "host_id",
    "moderators",
    "products",
    "brand_color",
    "language",
    "timezone",
    "cart_url_template",
    "count_unsigned",
    "auto_publish",
    "start",
    "end",
    "token",
    "from",
    "to",
    "figure",
    "q",
    "since",
    "before",
]
JSON_KEYS = [
    "show",
    "kind",
    "events",
    "props",
    "ts",
    "order_id",
    "amount",
    "currency",
    "vitrine_v",
    "utm_campaign",
    "products",
    "product",
    "quantity",
    "price",
    "referrer",
]
json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats()
    | st.text(no_surrogates, max_size=30)
    | st.sampled_from(["join", "add_to_cart", "heartbeat", "EUR", "show-1", VIEWER]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | text, inner, max_size=5)
    ),
    max_leaves=20,
)
json_body = st.one_of(
    json_value, st.dictionaries(st.sampled_from(JSON_KEYS), json_value, max_size=8)
).map(lambda v: json.dumps(v).encode())
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:96 VP8/90000\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    "a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\n"
)
raw_body = st.one_of(
    st.binary(max_size=600),
    st.sampled_from(
        [
            b"[" * 3000,
            b'{"a":' * 3000,
            b'{"show": 99999999999999999999999, "kind": "join"}',
            b'{"order_id": "1", "amount": 1e999, "currency": "EUR"}',
            b"\xff\xfe\x00\x00",
            b"null",
            SDP.encode(),
            SDP.replace("a=mid:0\r\n", "").encode(),
            SDP.replace("VP8", "H999").encode(),
            b"a=end-of-candidates\r\n",
        ]
    ),
    st.text(no_surrogates, max_size=200).map(lambda s: (SDP + s).encode()),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "application/sdp",
        "application/trickle-ice-sdpfrag",
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "image/png",
        "",
    ]
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
# Headers the app reads, each sent now and then with odd values.
EXTRA_HEADERS = {
    "Authorization": header_text.map(lambda t: "Bearer " + t),
    "Origin": st.sampled_from(["http://localhost", "https://evil.example", "null"]),
    "Range": st.one_of(
        st.sampled_from(["bytes=0-", "bytes=-0", "bytes=5-1", f"bytes={10**30}-", "bytes=0-0,1-1"]),
        header_text,
    ),
    "Accept-Language": st.one_of(st.sampled_from(["fr-FR,fr;q=0.9", "*;q=x", ",,;"]), header_text),
    "If-Modified-Since": st.one_of(st.sampled_from(["Thu, 01 Jan 1970 00:00:00 GMT"]), header_text),
    "If-Match": header_text,
    "Cookie": header_text.map(lambda t: f"vitrine_viewer={t}; vitrine_session={t}"),
}


def path_for(rule: str, draw: Any) -> str:
    """The rule with every parameter filled in, percent-encoded as a client would."""

    def fill(match: re.Match[str]) -> str:
        converter = match.group(1) or "default"
        if converter == "int":
            return str(draw(int_param))
        value = draw(st.one_of(segment, st.just("1")))
        return quote(str(value), safe="/" if converter == "path" else "")

    return PARAM_RE.sub(fill, rule)


# -- the app, once for the module --------------------------------------------------------


class Harness:
    """The app with its lifespan running on an event loop owned here, an admin client,
    an anonymous client, and a few rows for ids to land on."""

    def __init__(self, data_dir: Path) -> None:
        self.runner = asyncio.Runner()
        config = load_config(
            environ={},
            overrides={
                "media.workers": "0",
                "storage.data_dir": str(data_dir),
                "limits.login_attempts": 1_000_000,
            },
        )
        self.app: Quart = create_app(config)
        self.lifespan = self.app.test_app()
        self.runner.run(self.lifespan.__aenter__())
        self.services: Services = self.app.extensions["vitrine"]
        self.admin: QuartClient = self.app.test_client()
        self.anonymous: QuartClient = self.app.test_client()
        self.csrf = ""
        self.runner.run(self.seed())

    async def seed(self) -> None:
        db = self.services.db
        product = await create_product(
            db,
            ProductData("Scarf", "", "SCF", 7500, "EUR", "in_stock", "https://s.example/f", ""),
            None,
        )
        await shows.create_show(
            db, shows.ShowData("Fuzz", "", 1_900_000_000, 60, None), product_ids=[product]
        )
        await self.sign_in_admin()
        for client in (self.admin, self.anonymous):
            client.set_cookie("localhost", "vitrine_viewer", VIEWER)

    async def sign_in_admin(self) -> None:
        self.csrf = await sign_in(self.admin, self.services, "admin")

    async def still_admin(self) -> None:
        """A fuzzed request may have signed the admin out (logout, a role change):
        sign in again, so every admin example runs as an admin."""
        r = await self.admin.get("/admin/settings")
        token = CSRF_RE.search(await r.get_data(as_text=True))
        if r.status_code != 200 or token is None:
            await self.sign_in_admin()
        else:
            self.csrf = token.group(1)

    def close(self) -> None:
        self.runner.run(self.lifespan.__aexit__(None, None, None))
        self.runner.close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp) / "data")
        try:
            yield h
        finally:
            h.close()


def assert_no_crash(status: int, body: bytes, what: str) -> None:
    assert status < 500, f"{what} answered {status}: {body[:300]!r}"
    leaked = LEAK_RE.search(body.decode("utf-8", "replace"))
    assert leaked is None, f"{what} leaks {leaked.group(0)!r}: {body[:300]!r}"


@pytest.mark.parametrize("role", ["admin", "anonymous"])
@pytest.mark.parametrize(("rule", "method"), ROUTES, ids=[f"{m} {r}" for r, m in ROUTES])
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_route_answers_500(
    harness: Harness, rule: str, method: str, role: str, data: st.DataObject
) -> None:
    path = path_for(rule, data.draw)
    query = data.draw(st.dictionaries(st.sampled_from(FIELDS) | text, scalar, max_size=4))
    kinds = ["none", "form", "multipart", "json", "raw"]
    if role == "admin" and not path.startswith(("/api/", "/whip/", "/whep/")):
        kinds = ["form", "form", "multipart", *kinds]  # mostly forms an admin could send
    kind = data.draw(st.sampled_from(kinds))
    headers: dict[str, str] = {}
    for name in data.draw(st.sets(st.sampled_from(sorted(EXTRA_HEADERS)), max_size=3)):
        if name == "Cookie" and role == "admin":
            continue  # the admin's own session cookie stays
        headers[name] = data.draw(EXTRA_HEADERS[name])
    request: dict[str, Any] = {"method": method, "headers": headers, "query_string": query}
    if kind in ("form", "multipart"):
        form = data.draw(st.dictionaries(st.sampled_from(FIELDS) | text, scalar, max_size=8))
        if role == "admin" and data.draw(st.integers(0, 9)) > 0:
            form["csrf_token"] = "{csrf}"  # filled in once the admin is known signed in
        request["form"] = form
        if kind == "multipart":
            picture = data.draw(st.sampled_from([PNG, PNG[:40], b"", b"GIF89a" + b"\x00" * 20]))
            field = data.draw(st.sampled_from(["image", "logo", "file", "csv", "poster"]))
            request["files"] = {field: file_field(picture)}
    elif kind == "json":
        request["data"] = data.draw(json_body)
        headers["Content-Type"] = "application/json"
    elif kind == "raw":
        request["data"] = data.draw(raw_body)
        headers["Content-Type"] = data.draw(content_types)

    async def send() -> tuple[int, bytes]:
        client = harness.admin if role == "admin" else harness.anonymous
        if role == "admin":
            await harness.still_admin()
            if request.get("form", {}).get("csrf_token") == "{csrf}":
                request["form"]["csrf_token"] = harness.csrf
        response = await client.open(path, **request)
        return response.status_code, await response.get_data()

    status, body = harness.runner.run(send())
    assert_no_crash(status, body, f"{method} {path} ({role}, {kind})")


# -- the audit's own findings, one by one ----------------------------------------------

HUGE = "99999999999999999999999"


async def test_the_observed_500s_are_4xx(client: QuartClient, services: Services) -> None:
    await shows.create_show(services.db, shows.ShowData("S", "", 1_900_000_000, 60, None))
    client.set_cookie("localhost", "vitrine_viewer", VIEWER)
    deep = b"[" * 3000
    for method, path, body in [
        ("POST", "/api/events", deep),
        ("POST", "/api/conversions/beacon", deep),
        ("GET", f"/shows/{HUGE}", b""),
        ("GET", f"/api/shows/{HUGE}/status", b""),
        ("POST", f"/whep/{HUGE}", SDP.encode()),
        ("GET", f"/api/replays/{HUGE}/chat", b""),
        ("GET", f"/shows/{2**63}", b""),
    ]:
        r = await client.open(
            path, method=method, data=body, headers={"Content-Type": "text/plain"}
        )
        assert 400 <= r.status_code < 500, (method, path, r.status_code)
        assert_no_crash(r.status_code, await r.get_data(), f"{method} {path}")
    # The largest id SQLite holds is still an id: looked up, and not found.
    assert (await client.get(f"/shows/{2**63 - 1}")).status_code == 404
    r = await client.post("/api/events", data=deep, headers={"Content-Type": "text/plain"})
    assert "nests deeper" in (await r.get_json())["error"]


@pytest.mark.parametrize("path", ["/static//x", "/static//evil.example/x", "/static///js"])
async def test_routing_redirects_stay_on_this_host(client: QuartClient, path: str) -> None:
    r = await client.get(path, headers={"Host": "evil.example"})
    location = r.headers.get("Location", "")
    assert r.status_code == 404 or (
        300 <= r.status_code < 400 and location.startswith("/") and not location.startswith("//")
    ), (r.status_code, location)
    assert "evil.example/" not in location.split("/static/", 1)[0]


async def test_room_socket_answers_nested_json_with_a_notice(live_server: LiveServer) -> None:
    created = json.loads(
        live_server.cli("shows", "create", "--title", "Fuzz", "--starts-at", "2030-01-01T10:00")
    )
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        assert conn.execute("SELECT 1 FROM shows WHERE id = ?", (created["id"],)).fetchone()
    url = live_server.url.replace("http://", "ws://") + f"/ws/shows/{created['id']}"
    async with websockets.connect(url, origin=live_server.url) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1}))
        await ws.send("[" * 3000)
        notices: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(m.get("code") == "bad_message" for m in notices):
                batch = json.loads(await ws.recv())
                notices += [m for m in batch if m.get("type") == "notice"]
        # The socket is still open and still answers.
        await ws.send("{}")
        async with asyncio.timeout(5):
            await ws.recv()
        assert ws.close_code is None


def test_every_route_is_fuzzed() -> None:
    """The list is the app's own: a rule a blueprint adds shows up here by itself."""
    rules = {r for r, _m in ROUTES}
    assert {"/api/events", "/api/conversions/beacon", "/shows/<int:show_id>"} <= rules
    assert {"/whep/<int:show_id>", "/admin/settings/sales", "/static/<path:filename>"} <= rules
    assert {m for _r, m in ROUTES} >= {"GET", "POST", "PATCH", "DELETE", "OPTIONS"}


async def test_a_form_field_whose_name_cannot_be_read_is_ignored(
    client: QuartClient, services: Services, admin: str
) -> None:
    """Found by the fuzz: a multipart part named with a line break reached the show form
    as a field named None (AttributeError, 500)."""
    r = await client.post(
        "/admin/shows/new",
        form={"\n": "", "csrf_token": admin, "title": "Fuzz"},
        files={"cover": file_field(PNG)},
    )
    assert r.status_code < 500
    assert_no_crash(r.status_code, await r.get_data(), "POST /admin/shows/new")


async def test_a_static_file_name_too_long_for_the_file_system_is_404(
    client: QuartClient,
) -> None:
    """Found by the fuzz: the file system's "File name too long" answered 500."""
    r = await client.get("/static/" + quote("é" * 300))
    assert r.status_code == 404
    assert (await client.get("/static/js/kpi.js")).status_code == 200
