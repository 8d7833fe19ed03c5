"""The client address behind a reverse proxy: X-Forwarded-For is believed only from
`server.trusted_proxies`, and then only its right-most hop that is not a proxy."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from quart import Quart
from werkzeug.datastructures import Headers

from appliance.accounts.users import create_user
from appliance.app import create_app
from appliance.config import ConfigError, ServerSettings, load_config
from appliance.views.api.room import Handshake
from appliance.views.web import client_address
from tests.conftest import PASSWORD, csrf_of

PROXY = {"client": ("127.0.0.1", 40000)}  # the reverse proxy on the same machine


def address(peer: str | None, *forwarded: str, **server: str | bool) -> str:
    settings = ServerSettings(**{"proxy_headers": True, **server})  # type: ignore[arg-type]
    headers = Headers([("X-Forwarded-For", value) for value in forwarded])
    return client_address(settings, Handshake(headers, {}, peer))


def test_forwarded_headers_only_from_trusted_proxies() -> None:
    # A client connecting directly cannot claim another address.
    assert address("198.51.100.7", "203.0.113.1") == "198.51.100.7"
    assert address("198.51.100.7", "127.0.0.1") == "198.51.100.7"
    # Off, the header is ignored even from the proxy.
    assert address("127.0.0.1", "203.0.113.1", proxy_headers=False) == "127.0.0.1"
    # From the proxy (loopback, trusted by default) it is believed.
    assert address("127.0.0.1", "203.0.113.1") == "203.0.113.1"
    assert address("::1", "2001:db8::5") == "2001:db8::5"
    assert address("::ffff:127.0.0.1", "203.0.113.1") == "203.0.113.1"
    # No header, an empty or a garbage one: the proxy is all we know.
    assert address("127.0.0.1") == "127.0.0.1"
    assert address("127.0.0.1", "") == "127.0.0.1"
    assert address("127.0.0.1", "unknown") == "127.0.0.1"


def test_the_right_most_untrusted_hop_is_the_client() -> None:
    # The client wrote the left-most value; the proxy appended the real one.
    assert address("127.0.0.1", "1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert address("127.0.0.1", "1.2.3.4", "203.0.113.9") == "203.0.113.9"  # two headers
    # A chain of trusted proxies is walked through.
    chain = "1.2.3.4, 203.0.113.9, 10.0.0.2, 10.0.0.1"
    assert address("127.0.0.1", chain, trusted_proxies="127.0.0.1, 10.0.0.0/8") == "203.0.113.9"
    # …but only those configured: 10.0.0.1 is not trusted by default.
    assert address("127.0.0.1", chain) == "10.0.0.1"
    # Ports and brackets as some proxies write them.
    assert address("127.0.0.1", "203.0.113.9:5123") == "203.0.113.9"
    assert address("127.0.0.1", "[2001:db8::7]:443") == "2001:db8::7"
    # Garbage left of a trusted hop: the trusted hop is the answer, not the garbage.
    assert address("127.0.0.1", "evil, 10.0.0.1", trusted_proxies="127.0.0.1, 10.0.0.1") == (
        "10.0.0.1"
    )
    # Everything trusted (a client on the proxy's own machine): the left-most hop.
    assert address("127.0.0.1", "127.0.0.5") == "127.0.0.5"


def test_trusted_proxies_are_checked_at_start() -> None:
    config = load_config(environ={"VITRINE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8"})
    assert config.server.trusted_proxies == "10.0.0.0/8, fd00::/8"
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies: expected .*networks"):
        load_config(environ={"VITRINE_SERVER_TRUSTED_PROXIES": "10.0.0.0/8, proxy.lan"})


# Any header value a server passes on (HTTP parsers refuse line breaks before Vitrine).
header_text = st.text(
    alphabet=st.sampled_from(list("0123456789abcdef.:,[] /%x\t-"))
    | st.characters(blacklist_characters="\r\n"),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(
    peer=st.one_of(st.none(), header_text, st.ip_addresses().map(str)),
    forwarded=st.lists(
        st.one_of(header_text, st.lists(st.ip_addresses().map(str)).map(", ".join)), max_size=3
    ),
    trusted=st.sampled_from(["127.0.0.0/8, ::1", "0.0.0.0/0, ::/0", "10.0.0.0/8", ""]),
)
def test_any_header_gives_an_address_and_never_raises(
    peer: str | None, forwarded: list[str], trusted: str
) -> None:
    got = address(peer, *forwarded, trusted_proxies=trusted)
    if peer is not None and got != peer and got != "unknown":
        ipaddress.ip_address(got)  # what the client wrote comes back only as an address


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[Quart]:
    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "server.proxy_headers": "true",
        },
    )
    application = create_app(config)
    async with application.test_app():
        yield application


async def test_rotating_the_forwarded_header_does_not_reset_the_login_limit(
    proxied: Quart,
) -> None:
    svc = proxied.extensions["vitrine"]
    await create_user(svc.db, "ana@example.com", "Ana", "admin", PASSWORD)
    client = proxied.test_client()
    token = await csrf_of(client)
    limit = svc.config.limits.login_attempts

    async def attempt(forwarded: str, password: str = "wrong password") -> int:
        response = await client.post(
            "/login",
            form={"email": "ana@example.com", "password": password, "csrf_token": token},
            headers={"X-Forwarded-For": forwarded},
            scope_base=PROXY,
        )
        return response.status_code

    # The client writes a new left-most value each time; the proxy appends its address.
    for i in range(limit):
        assert await attempt(f"10.9.{i}.1, 203.0.113.9") == 400
    assert await attempt("10.9.99.1, 203.0.113.9") == 429
    assert await attempt("203.0.113.9", PASSWORD) == 429  # the right password too, for now
    # Another client behind the same proxy is not held back by the first one's tries.
    assert await attempt("203.0.113.10", PASSWORD) == 302
