"""`vitrine serve --lan`: HTTPS on the LAN address with a certificate made on first use,
media announced on that address, the studio's address and its QR code printed; and the
studio's explanation when it is opened over plain HTTP from another device."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from quart.testing import QuartClient

from appliance.app import create_app
from appliance.catalog import shows
from appliance.config import load_config
from appliance.lan import (
    CERT_FILE,
    KEY_FILE,
    ensure_certificate,
    is_loopback_host,
    lan_address,
    lan_config,
    qr_text,
)
from appliance.services import Services
from tests.conftest import ROOT, free_port, sign_in


def san_ips(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}


def test_certificate_is_made_once_private_and_remade_for_a_new_address(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path, "192.168.1.20")
    assert (cert.name, key.name) == (CERT_FILE, KEY_FILE)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert san_ips(cert) == {"192.168.1.20", "127.0.0.1"}
    first = cert.read_bytes(), key.read_bytes()
    # The next start keeps it: the phone accepted this one already.
    assert ensure_certificate(tmp_path, "192.168.1.20") == (cert, key)
    assert (cert.read_bytes(), key.read_bytes()) == first
    # Another Wi-Fi, another address: a new certificate that names it.
    ensure_certificate(tmp_path, "10.0.0.7")
    assert san_ips(cert) == {"10.0.0.7", "127.0.0.1"}
    assert key.read_bytes() != first[1]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert not list(tmp_path.glob("*.new"))
    # A damaged file is replaced, not a crash.
    cert.write_text("not a certificate")
    ensure_certificate(tmp_path, "10.0.0.7")
    assert san_ips(cert) == {"10.0.0.7", "127.0.0.1"}


def test_lan_address_is_a_reachable_ipv4_address() -> None:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network but loopback")
    ip = ipaddress.ip_address(address)
    assert ip.version == 4 and not ip.is_loopback and not ip.is_link_local
    # An address of this machine: a socket can listen on it.
    import socket

    with socket.socket() as s:
        s.bind((address, 0))


def test_lan_settings_listen_announce_and_link_on_the_lan_address(tmp_path: Path) -> None:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network but loopback")
    overrides = {"storage.data_dir": str(tmp_path), "server.host": None, "server.port": "9443"}
    config = lan_config(None, overrides)
    assert config.server.host == address
    assert config.media.host_addresses == address
    assert config.server.public_url == f"https://{address}:9443" and config.https
    # --host chooses another address; an IPv6 one is bracketed in links.
    config = lan_config(None, {**overrides, "server.host": "fd00::5"})
    assert config.server.public_url == "https://[fd00::5]:9443"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1:8080", True), ("localhost", True), ("[::1]:80", True), ("127.9.9.9", True),
     ("app.localhost:8080", True), ("192.168.1.20:8080", False), ("[fd00::5]", False),
     ("shop.example", False), ("[bad", False), ("", False)],
)  # fmt: skip
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


class Output:
    """The lines a process prints, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, limit: float = 30) -> str:
        deadline = time.monotonic() + limit
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, "".join(self.lines)
            assert self.process.poll() is None or self.thread.is_alive(), "".join(self.lines)
            time.sleep(0.1)
        return "".join(self.lines)


def post_sdp(url: str, key: str, sdp: str, context: ssl.SSLContext) -> str:
    request = urllib.request.Request(
        url,
        data=sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
    )
    with urllib.request.urlopen(request, timeout=30, context=context) as reply:
        assert reply.status == 201
        return reply.read().decode()


async def whip_answer(url: str, key: str, context: ssl.SSLContext) -> str:
    from tests.media_helpers import CounterVideoTrack, make_publisher

    pc, offer = await make_publisher(CounterVideoTrack())
    try:
        return await asyncio.to_thread(post_sdp, url, key, offer, context)
    finally:
        await pc.close()


def test_serve_lan_serves_https_with_its_certificate_and_prints_a_qr_code(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(data)}
    env.pop("VITRINE_MEDIA_HOST_ADDRESSES", None)
    # --host keeps this test on loopback; without it, --lan takes lan_address().
    process = subprocess.Popen(
        [sys.executable, "-m", "appliance", "serve", "--lan", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output = Output(process)
    try:
        text = output.wait_for("Proceed")
        url = f"https://127.0.0.1:{port}/admin/shows"
        assert f"open {url}\n" in text
        assert qr_text(url) in text  # the QR code of exactly that address
        assert "not private" in text

        cert, key = data / CERT_FILE, data / KEY_FILE
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        # A real TLS client that trusts only the file the server made.
        context = ssl.create_default_context(cafile=str(cert))
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", timeout=10, context=context
        ) as reply:
            assert reply.status == 200
        with pytest.raises(urllib.error.URLError):  # and nothing else trusts it
            urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=10)

        # Media is announced on the LAN address (here the --host given): every candidate
        # of a WHIP answer is on it, loopback included, which aioice leaves out otherwise.
        created = subprocess.run(
            [sys.executable, "-m", "appliance", "shows", "create", "--title", "Phone test",
             "--starts-at", "2030-01-01T10:00"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        show = json.loads(created.stdout)
        assert show["whip_url"] == f"https://127.0.0.1:{port}/whip/{show['id']}"
        answer = asyncio.run(whip_answer(show["whip_url"], show["stream_key"], context))
        candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates), candidates
    finally:
        process.terminate()
        process.wait(timeout=15)
        output.thread.join(5)
        assert process.stdout is not None
        process.stdout.close()


INSECURE = 'id="studio-insecure" role="alert">'  # the block, not hidden


async def studio_page(client: QuartClient, services: Services, host: str) -> str:
    show_id = await shows.create_show(
        services.db, shows.ShowData("Live", "", 2_000_000_000, 60, None)
    )
    reply = await client.get(f"/studio/{show_id}", headers={"Host": host})
    assert reply.status_code == 200
    return await reply.get_data(as_text=True)


@pytest.mark.parametrize("host", ["192.168.1.20:8080", "shop-laptop.local:8080", "[fd00::5]"])
async def test_studio_over_plain_http_from_another_device_says_how_to_fix_it(
    client: QuartClient, services: Services, admin: str, host: str
) -> None:
    page = await studio_page(client, services, host)
    assert INSECURE in page
    block = page.split(INSECURE, 1)[1].split("</div>", 1)[0]
    assert "deploy/compose.yaml" in block and "Caddy" in block
    assert "vitrine serve --lan" in block and "scripts/run --lan" in block


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"])
async def test_studio_on_this_machine_needs_no_explanation(
    client: QuartClient, services: Services, admin: str, host: str
) -> None:
    # Plain HTTP on loopback is a secure context: the camera opens.
    page = await studio_page(client, services, host)
    assert INSECURE not in page and 'id="studio-insecure" role="alert" hidden>' in page


async def test_studio_behind_an_https_front_needs_no_explanation(tmp_path: Path) -> None:
    # Behind Caddy the request reaches Vitrine over plain HTTP with the domain as Host;
    # server.public_url says the page itself is https.
    config = load_config(
        environ={},
        overrides={
            "media.workers": "0",
            "storage.data_dir": str(tmp_path / "data"),
            "server.public_url": "https://live.myshop.com",
        },
    )
    application = create_app(config)
    async with application.test_app():
        client = application.test_client()
        services = application.extensions["vitrine"]
        await sign_in(client, services, "admin")
        page = await studio_page(client, services, "live.myshop.com")
    assert INSECURE not in page
