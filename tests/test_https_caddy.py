"""HTTPS in one step: deploy/compose.yaml's settings and deploy/Caddyfile, with Debian's
Caddy in front of a real Vitrine on 127.0.0.1 (Vitrine runs directly, not in a container,
to stay fast). Caddy's own CA signs the certificate for localhost, as `tls internal`
would. Headless Chromium opens the studio over https:// (a secure context: the camera
opens), goes live over WHIP through Caddy, a viewer plays over WHEP through it, and the
live room's websocket goes through the same front."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from appliance.config import load_config
from tests.conftest import PASSWORD, ROOT, LiveServer, free_port, launch, stop
from tests.test_browser_live import ARGS, CHROMIUM, create_host

CADDY = shutil.which("caddy")
pytestmark = pytest.mark.skipif(
    CADDY is None, reason="caddy is not installed (apt-get install caddy; .ci/run installs it)"
)


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """The `environment:` map of one service of deploy/compose.yaml, with ${VAR},
    ${VAR:-default} and ${VAR:?error} filled in as compose does."""
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    block = re.search(rf"^  {service}:\n((?:    .*\n|\n)+)", text, re.M)
    assert block, f"no service {service}"
    env = re.search(r"^    environment:\n((?:      .*\n)+)", block.group(1), re.M)
    assert env, f"service {service} has no environment"

    def fill(match: re.Match[str]) -> str:
        name, op, word = match.group(1), match.group(2), match.group(3)
        if name in variables:
            return variables[name]
        assert op == ":-", f"compose needs {name}: {word}"
        return word

    result = {}
    for line in env.group(1).splitlines():
        key, _, value = line.strip().partition(": ")
        value = re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", fill, value.strip())
        result[key] = value.strip('"')
    return result


@dataclass
class Front:
    url: str  # https://localhost:PORT, through Caddy
    vitrine: LiveServer
    ca: Path  # Caddy's root certificate
    settings: dict[str, str]  # Vitrine's environment, from compose.yaml

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def get(self, path: str) -> tuple[int, str, dict[str, str]]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10, context=self.context()) as r:
                return r.status, r.read().decode(errors="replace"), dict(r.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(), dict(exc.headers)


@pytest.fixture
def front(tmp_path: Path) -> Iterator[Front]:
    assert CADDY is not None
    https_port = free_port()
    domain = f"localhost:{https_port}"
    settings = compose_environment("vitrine", {"VITRINE_DOMAIN": domain})
    # launch() picks Vitrine's port itself; Caddy is told it as compose tells both.
    assert settings.pop("VITRINE_SERVER_PORT") == "8080"
    vitrine = launch(tmp_path / "data", tmp_path / "vitrine.log", settings)
    vitrine_port = str(urlsplit(vitrine.url).port)
    caddy_env = compose_environment(
        "caddy", {"VITRINE_DOMAIN": domain, "VITRINE_PORT": vitrine_port}
    )
    assert caddy_env == {"VITRINE_DOMAIN": domain, "VITRINE_PORT": vitrine_port}
    # This machine's own settings around the deployed Caddyfile: no admin endpoint, no
    # port 80 redirect server, nothing installed in the system's trust store.
    config = tmp_path / "Caddyfile"
    config.write_text(
        "{\n\tadmin off\n\tskip_install_trust\n\tauto_https disable_redirects\n"
        f"\tdefault_bind 127.0.0.1\n\tstorage file_system {tmp_path / 'caddy'}\n}}\n"
        f"import {ROOT / 'deploy' / 'Caddyfile'}\n"
    )
    log = (tmp_path / "caddy.log").open("w")
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
        env={**os.environ, **caddy_env, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    ca = tmp_path / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    result = Front(f"https://{domain}", vitrine, ca, settings)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if ca.exists() and result.get("/healthz")[0] == 200:
                    break
            except (OSError, ssl.SSLError):
                pass
            assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
            time.sleep(0.2)
        yield result
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        log.close()
        stop(vitrine)


async def until_hls(front: Front, show_id: int, limit: float = 20) -> str:
    deadline = time.monotonic() + limit
    while True:
        code, body, _headers = await asyncio.to_thread(front.get, f"/hls/{show_id}/index.m3u8")
        if code == 200:
            assert body.startswith("#EXTM3U"), body
            return body
        assert time.monotonic() < deadline, (code, body)
        await asyncio.sleep(0.5)


def test_compose_settings_need_no_editing(front: Front) -> None:
    """The compose file's settings give the public https address and believe Caddy's
    X-Forwarded-For (it connects from loopback, on the host's network)."""
    saved = {k: os.environ.get(k) for k in front.settings}
    os.environ.update(front.settings)
    try:
        config = load_config(None)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key)
            else:
                os.environ[key] = value
    assert config.server.public_url == front.url
    assert config.server.host == "127.0.0.1"
    assert config.server.proxy_headers is True
    assert "127.0.0.1" in config.server.trusted_proxies.replace(" ", "").split(",")
    # The running server announces that address, and its links use it.
    assert f"Vitrine is serving {front.url}" in front.vitrine.output()
    status, _body, headers = front.get("/login")
    assert status == 200
    assert "; Secure" in headers["Set-Cookie"], headers  # the session cookie is https-only
    # A certificate from Caddy's CA, for the domain: verified by the client above.
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(front.url + "/healthz", timeout=5)  # not trusted by default


async def test_studio_goes_live_and_viewer_plays_through_caddy(front: Front) -> None:
    from playwright.async_api import async_playwright

    email = create_host(front.vitrine)
    show = json.loads(
        front.vitrine.cli(
            "shows", "create", "--title", "Over HTTPS", "--starts-at", "2030-01-01T10:00"
        )
    )
    # WHIP and WHEP addresses printed by the CLI are the public https ones.
    assert show["whip_url"] == f"{front.url}/whip/{show['id']}"
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # The certificate comes from Caddy's CA, which this browser was never given.
            options = {
                "viewport": {"width": 390, "height": 844},
                "ignore_https_errors": True,
                "bypass_csp": True,
            }
            seller = await browser.new_context(**options)
            page = await seller.new_page()
            await page.goto(f"{front.url}/login?next=/studio/{show['id']}")
            await page.fill("#f-email", email)
            await page.fill("#f-password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{front.url}/studio/{show['id']}")
            assert await page.evaluate("window.isSecureContext") is True
            await page.wait_for_function(
                "document.querySelector('#preview').videoWidth > 0", timeout=15000
            )
            assert await page.is_hidden("#studio-insecure")

            viewer_ctx = await browser.new_context(**options)
            viewer = await viewer_ctx.new_page()
            sockets: list[str] = []
            viewer.on("websocket", lambda ws: sockets.append(ws.url))
            await viewer.goto(f"{front.url}/shows/{show['id']}")
            await viewer.wait_for_function(
                "document.body.dataset.roomState === 'open'", timeout=15000
            )
            assert sockets and all(u.startswith(f"wss://{front.url[8:]}/") for u in sockets)

            page.on("dialog", lambda dialog: dialog.accept())
            await page.click("#go-live")
            await page.wait_for_function(
                "document.body.dataset.studioState === 'live'", timeout=20000
            )
            await viewer.wait_for_function(
                "document.body.dataset.playerState === 'playing'", timeout=20000
            )
            await viewer.wait_for_function(
                "document.querySelector('#player').videoWidth > 0", timeout=15000
            )
            t0 = await viewer.evaluate("document.querySelector('#player').currentTime")
            await viewer.wait_for_timeout(1500)
            t1 = await viewer.evaluate("document.querySelector('#player').currentTime")
            assert t1 > t0, (t0, t1)
            status = json.loads(front.get(f"/api/shows/{show['id']}/status")[1])
            assert status == {"status": "live", "publishing": True, "viewers": 1}
            # The HLS rendition's playlist and media come through the same front.
            playlist = await until_hls(front, show["id"])
            media = next(u for u in re.findall(r'URI="([^"]+)"|^([^#\s].*)$', playlist, re.M))
            uri = next(u for u in media if u)
            code, body, headers = front.get(urljoin(f"/hls/{show['id']}/index.m3u8", uri))
            assert code == 200 and headers["Content-Type"].startswith(("video/", "audio/"))
            assert len(body) > 100, headers
        finally:
            await browser.close()
