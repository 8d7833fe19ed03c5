"""Fixtures: a real app on a real SQLite file in a temporary data directory.

`client` drives the app in-process with its lifespan running (startup migrations,
shutdown); `live_server` starts the real `vitrine serve` under Hypercorn on a free port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.accounts.users import create_user
from appliance.app import create_app
from appliance.config import Config, load_config
from appliance.services import Services

ROOT = Path(__file__).resolve().parent.parent
# Relay workers (media.workers, by default one process per core) cost each server the
# start of its worker processes. The tests run the one-process relay ("media.workers":
# "0" in each in-process app's overrides; here for every server they start as a process)
# unless they test the workers, which ask for them (tests/test_relay_workers.py, and the
# container image's smoke test runs the default).
os.environ.setdefault("VITRINE_MEDIA_WORKERS", "0")
PASSWORD = "correct horse battery"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(
        environ={}, overrides={"media.workers": "0", "storage.data_dir": str(tmp_path / "data")}
    )


@pytest.fixture
async def app(config: Config) -> AsyncIterator[Quart]:
    application = create_app(config)
    async with application.test_app():
        yield application


@pytest.fixture
def services(app: Quart) -> Services:
    svc: Services = app.extensions["vitrine"]
    return svc


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


async def csrf_of(client: QuartClient, path: str = "/login") -> str:
    response = await client.get(path)
    match = CSRF_RE.search(await response.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def sign_in(client: QuartClient, services: Services, role: str = "admin") -> str:
    """Create a user with `role`, sign in as them, and return a CSRF token for forms."""
    email = f"{role}-{time.monotonic_ns()}@example.com"
    await create_user(services.db, email, role.title(), role, PASSWORD)
    token = await csrf_of(client)
    response = await client.post(
        "/login", form={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302, await response.get_data(as_text=True)
    # Signing in starts a new session, with a new CSRF token.
    return await csrf_of(client, "/admin")


@pytest.fixture
async def admin(client: QuartClient, services: Services) -> str:
    return await sign_in(client, services, "admin")


@pytest.fixture
def loopback_candidates() -> Iterator[None]:
    """aioice leaves loopback out unless told: media tests run on 127.0.0.1."""
    from media.aiortc_glue import set_host_addresses

    set_host_addresses(["127.0.0.1"])
    yield
    set_host_addresses([])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()

    def cli(self, *args: str) -> str:
        return self.cli_input(list(args), "")

    def cli_input(self, args: list[str], stdin: str) -> str:
        env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(self.data_dir)}
        result = subprocess.run(
            [sys.executable, "-m", "appliance", *args],
            cwd=ROOT,
            env=env,
            input=stdin + "\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout


def launch(data_dir: Path, log: Path, settings: dict[str, str] | None = None) -> LiveServer:
    """`vitrine serve` on a free port with `data_dir`, once it answers /healthz;
    `settings` are more VITRINE_* environment variables."""
    port = free_port()
    env = {
        **os.environ,
        "VITRINE_SERVER_PORT": str(port),
        "VITRINE_STORAGE_DATA_DIR": str(data_dir),
        # aioice leaves loopback out unless told: everything here runs on 127.0.0.1.
        "VITRINE_MEDIA_HOST_ADDRESSES": "127.0.0.1",
        "VITRINE_MEDIA_GRACE_SECONDS": "3",
        "VITRINE_KPIS_HEARTBEAT_SECONDS": "5",
        **(settings or {}),
    }
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "appliance", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", data_dir, process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"server did not start:\n{server.output()}")
        time.sleep(0.1)
    return server


def stop(server: LiveServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = launch(tmp_path / "live-data", tmp_path / "server.log")
    yield server
    stop(server)


async def sign_in_as(client: QuartClient, email: str, password: str = PASSWORD) -> str:
    """Sign `client` in as the existing user `email`; return a CSRF token for forms."""
    token = await csrf_of(client)
    response = await client.post(
        "/login", form={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, await response.get_data(as_text=True)
    return await csrf_of(client, "/admin")
