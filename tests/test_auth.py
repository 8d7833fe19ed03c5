from __future__ import annotations

import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quart.testing import QuartClient

from appliance.accounts.users import admin_exists, create_user
from appliance.services import Services
from appliance.views.admin.auth import safe_next
from tests.conftest import PASSWORD, ROOT, csrf_of, sign_in


async def test_sign_in_and_out(client: QuartClient, services: Services) -> None:
    await create_user(services.db, "ana@example.com", "Ana", "admin", PASSWORD)
    token = await csrf_of(client)
    response = await client.post(
        "/login",
        form={
            "email": "ANA@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/admin/shows",
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/shows"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    page = await client.get("/admin")
    assert page.status_code == 200
    assert "Hello, Ana" in await page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert token not in await page.get_data(as_text=True), "CSRF token survived sign-in"
    response = await client.post("/logout", form={"csrf_token": await csrf_of(client, "/admin")})
    assert response.status_code == 302
    response = await client.get("/admin")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/admin")


async def test_wrong_password_and_rate_limit(client: QuartClient, services: Services) -> None:
    await create_user(services.db, "bo@example.com", "Bo", "host", PASSWORD)
    token = await csrf_of(client)
    for _ in range(5):
        r = await client.post(
            "/login",
            form={"email": "bo@example.com", "password": "nope-nope-nope", "csrf_token": token},
        )
        assert r.status_code == 400
        assert "Wrong email or password" in await r.get_data(as_text=True)
    r = await client.post(
        "/login", form={"email": "bo@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 429
    assert "Too many failed attempts" in await r.get_data(as_text=True)


async def test_open_redirect_is_refused(client: QuartClient, services: Services) -> None:
    await create_user(services.db, "cy@example.com", "Cy", "admin", PASSWORD)
    token = await csrf_of(client)
    r = await client.post(
        "/login",
        form={
            "email": "cy@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert r.headers["Location"] == "/admin"


async def test_forms_without_csrf_token_are_refused(
    client: QuartClient, services: Services
) -> None:
    await create_user(services.db, "di@example.com", "Di", "admin", PASSWORD)
    await client.get("/login")
    r = await client.post("/login", form={"email": "di@example.com", "password": PASSWORD})
    assert r.status_code == 400
    assert "This form has expired" in await r.get_data(as_text=True)
    r = await client.post(
        "/login", form={"email": "di@example.com", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert r.status_code == 400


async def test_setup_page_creates_first_admin_once(client: QuartClient, services: Services) -> None:
    assert (await client.get("/setup?token=wrong")).status_code == 403
    r = await client.get(f"/setup?token={services.setup_token}")
    assert r.status_code == 200
    token = await csrf_of(client, f"/setup?token={services.setup_token}")
    bad = await client.post(
        "/setup",
        form={
            "token": services.setup_token,
            "csrf_token": token,
            "name": "Owner",
            "email": "owner@example.com",
            "password": "short",
        },
    )
    assert bad.status_code == 400
    assert "Use at least 10 characters" in await bad.get_data(as_text=True)
    assert not await admin_exists(services.db)
    ok = await client.post(
        "/setup",
        form={
            "token": services.setup_token,
            "csrf_token": token,
            "name": "Owner",
            "email": "owner@example.com",
            "password": PASSWORD,
        },
    )
    assert ok.status_code == 302
    assert await admin_exists(services.db)
    assert (await client.get(f"/setup?token={services.setup_token}")).status_code == 404
    again = await client.post(
        "/setup",
        form={
            "token": services.setup_token,
            "csrf_token": await csrf_of(client, "/admin"),
            "name": "X",
            "email": "x@example.com",
            "password": PASSWORD,
        },
    )
    assert again.status_code == 404


async def test_roles_are_checked_on_the_server(client: QuartClient, services: Services) -> None:
    token = await sign_in(client, services, "moderator")
    assert (await client.get("/admin")).status_code == 200
    assert (await client.get("/admin/shows")).status_code == 200
    for path in (
        "/admin/products",
        "/admin/products/new",
        "/admin/shows/new",
        "/admin/users",
        "/admin/settings",
    ):
        assert (await client.get(path)).status_code == 403, path
    r = await client.post(
        "/admin/products/new", form={"csrf_token": token, "name": "x", "price": "1"}
    )
    assert r.status_code == 403
    r = await client.post(
        "/admin/users",
        form={
            "csrf_token": token,
            "name": "x",
            "email": "e@x.y",
            "role": "admin",
            "password": PASSWORD,
        },
    )
    assert r.status_code == 403


async def test_host_manages_catalogue_but_not_team(client: QuartClient, services: Services) -> None:
    await sign_in(client, services, "host")
    assert (await client.get("/admin/products")).status_code == 200
    assert (await client.get("/admin/shows/new")).status_code == 200
    assert (await client.get("/admin/users")).status_code == 403
    assert (await client.get("/admin/settings")).status_code == 403


async def test_anonymous_posts_are_refused(client: QuartClient) -> None:
    token = await csrf_of(client)
    r = await client.post("/admin/products/new", form={"csrf_token": token, "name": "x"})
    assert r.status_code == 401


async def test_cookie_is_secure_behind_https(tmp_path) -> None:
    from appliance.app import create_app
    from appliance.config import load_config

    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "d"),
            "server.public_url": "https://live.shop.example",
        },
    )
    app = create_app(config)
    async with app.test_app():
        client = app.test_client()
        r = await client.get("/login")
        assert "Secure" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


async def sign_in_with_next(client: QuartClient, services: Services, target: str) -> str:
    """Sign in through /login with `next` = target; returns where the server sends us."""
    email = f"next-{len(target)}-{abs(hash(target))}@example.com"
    await create_user(services.db, email, "Next", "admin", PASSWORD)
    token = await csrf_of(client)
    r = await client.post(
        "/login", form={"email": email, "password": PASSWORD, "csrf_token": token, "next": target}
    )
    assert r.status_code == 302, await r.get_data(as_text=True)
    return str(r.headers["Location"])


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/phish",
        "/%09/evil.example/phish",
        "/\n/evil.example",
        "/%0a",
        "/%0d%0aSet-Cookie:x=1",
        "//evil",
        "/\\evil",
        "/%5cevil",
        "/%2f/evil",
        "https://evil",
        "http:/evil",
        "evil.example",
        " /admin",
        "/admin\x00",
        "",
    ],
)
async def test_next_accepts_only_a_same_origin_path(
    client: QuartClient, services: Services, target: str
) -> None:
    assert await sign_in_with_next(client, services, target) == "/admin"


async def test_next_keeps_a_plain_path_and_its_query(
    client: QuartClient, services: Services
) -> None:
    location = await sign_in_with_next(client, services, "/admin/shows?page=2&q=a%20b")
    assert location == "/admin/shows?page=2&q=a%20b"


async def test_login_page_with_a_control_character_in_next_is_not_an_error(
    client: QuartClient, services: Services
) -> None:
    """/login?next=/%0a answered 500 to a signed-in user: the newline reached the
    Location header, which werkzeug refuses."""
    for query in ("next=/%0a", "next=/%09/evil.example/phish", "next=%0d%0a"):
        anonymous = await client.get(f"/login?{query}")
        assert anonymous.status_code == 200, query
    await sign_in(client, services)
    for query in ("next=/%0a", "next=/%09/evil.example/phish", "next=/%5c%5cevil"):
        signed_in = await client.get(f"/login?{query}")
        assert signed_in.status_code == 302, query
        assert signed_in.headers["Location"] == "/admin", query


async def test_sign_in_redirect_keeps_the_whole_query(client: QuartClient) -> None:
    """The 401 redirect carries the page's query whole, `&` included, as one `next`."""
    r = await client.get("/admin/shows?status=live&page=2")
    assert r.status_code == 302
    location = r.headers["Location"]
    assert parse_qs(urlsplit(location).query) == {"next": ["/admin/shows?status=live&page=2"]}


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet="/\\%09adfz:.@ \t\n?#&=0123456789abcdefABCDEF")))
def test_safe_next_always_answers_a_same_origin_path(target: str) -> None:
    result = safe_next(target)
    assert result.startswith("/") and not result.startswith("//")
    assert not any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in result)
    for text in (result, unquote(result)):
        assert "\\" not in text
        assert not any(ch in "\t\n\r\x0b\x0c" or unicodedata.category(ch) == "Cc" for ch in text)
        parts = urlsplit(text)
        assert not parts.scheme and not parts.netloc
    # What a browser makes of it, tabs and newlines stripped as the URL standard says.
    stripped = "".join(ch for ch in result if ch not in "\t\n\r")
    assert urlsplit(urljoin("https://shop.example/login", stripped)).netloc == "shop.example"
    result.encode("latin-1")  # a Location header must be encodable


def test_create_admin_without_a_terminal_says_so(tmp_path: Path) -> None:
    """No terminal (a service, a CI job) and no --password-stdin: one clear line, exit 2,
    not getpass's EOFError traceback."""
    args = ["create-admin", "--email", "a@example.com", "--data-dir", str(tmp_path / "data")]
    result = subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "EOFError" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--password-stdin" in lines[0], result.stderr
    assert "created admin" not in result.stdout
