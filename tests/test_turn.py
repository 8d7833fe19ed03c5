"""TURN credentials issued per page with media.turn_secret (the TURN REST convention
coturn's use-auth-secret checks). End to end, with coturn over TLS and a viewer whose
UDP is blocked: tests/test_networks.py::test_udp_blocked_viewer_plays_over_turn_tls."""

from __future__ import annotations

import html
import json
import re
import time
from pathlib import Path

import pytest
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.config import Config, load_config
from appliance.live.bridge import ice_servers
from appliance.services import Services
from appliance.turn import rest_credentials


def test_credentials_follow_the_turn_rest_convention() -> None:
    # Expected value from `openssl dgst -sha1 -hmac north-wind -binary | base64`.
    username, password = rest_credentials("north-wind", 3600, now=1_700_000_000)
    assert username == "1700003600:vitrine"
    assert password == "vUXw9zvKziyCSqaCR45srYC4+UA="


def test_pages_get_fresh_credentials_and_the_server_no_turn(tmp_path: Path) -> None:
    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path),
            "media.ice_servers": "stun:stun.example.com:3478,turns:turn.example.com:443",
            "media.turn_secret": "s3cret",
            "media.turn_ttl_seconds": "900",
            "media.turn_username": "ignored",
        },
    )
    stun, turn = ice_servers(config)
    assert stun == {"urls": "stun:stun.example.com:3478"}
    expires, label = turn["username"].split(":")
    assert label == "vitrine"
    assert turn["credential"] == rest_credentials("s3cret", 0, now=int(expires))[1]
    # The server's own peer connections: their credentials would expire; they need none.
    assert ice_servers(config, for_server=True) == [stun]


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The app of this module's page test: a TURN server with a shared secret."""
    return load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "media.ice_servers": "turns:turn.example.com:443?transport=tcp",
            "media.turn_secret": "page-secret",
        },
    )


async def test_show_page_hands_out_credentials_not_the_secret(
    client: QuartClient, services: Services
) -> None:
    show = await shows.create_show(services.db, shows.ShowData("Turn", "", 2_000_000_000, 60, None))
    pages = [await (await client.get(f"/shows/{show}")).get_data(as_text=True) for _ in "ab"]
    entries = []
    for page in pages:
        assert "page-secret" not in page
        found = re.search(r'data-ice-servers="([^"]*)"', page)
        assert found is not None
        (entry,) = json.loads(html.unescape(found.group(1)))
        assert entry["urls"] == "turns:turn.example.com:443?transport=tcp"
        assert entry["username"].endswith(":vitrine") and entry["credential"]
        entries.append(entry)
    # Valid for media.turn_ttl_seconds (6 h by default) from now.
    expires = int(entries[-1]["username"].split(":")[0])
    assert 6 * 3600 - 60 < expires - time.time() <= 6 * 3600
