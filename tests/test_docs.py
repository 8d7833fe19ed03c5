"""The documentation and the packaging match the code."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from appliance.cli import build_parser
from tests.conftest import ROOT


def cli_commands() -> list[str]:
    parser = build_parser()
    names = []
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        nested = [a for a in p._actions if a.dest == "shows_command"]
        if nested:
            names += [f"{name} {child}" for child in nested[0].choices]
        else:
            names.append(name)
    return names


@pytest.mark.parametrize("command", cli_commands())
def test_every_command_is_documented(command: str) -> None:
    guide = (ROOT / "docs" / "operator.md").read_text()
    assert f"`vitrine {command}" in guide
    assert command.split()[0] in (ROOT / "README.md").read_text()


def test_readme_starts_with_the_two_commands() -> None:
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:12])
    assert "scripts/run" in head and "scripts/test" in head


def test_image_installs_like_scripts_run() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    runs = re.findall(r"^RUN (.+?)(?<!\\)$", dockerfile, flags=re.M | re.S)
    assert any(r.startswith("scripts/install ") for r in runs), "the image must use scripts/install"
    bootstrap = (ROOT / "scripts" / "bootstrap").read_text()
    assert "scripts/install .venv/bin/python" in bootstrap
    assert "exec .venv/bin/vitrine serve" in (ROOT / "scripts" / "run").read_text()
    assert "scripts/bootstrap" in (ROOT / "scripts" / "run").read_text()
    assert "scripts/bootstrap --dev" in (ROOT / "scripts" / "test").read_text()
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()
    # Both install from the same lock file with hashes.
    install = (ROOT / "scripts" / "install").read_text()
    assert "--require-hashes" in install and "requirements.lock" in install
    assert "COPY requirements.lock" in dockerfile
    for line in ('VOLUME ["/data"]', "EXPOSE 8080/tcp", "/healthz"):
        assert line in dockerfile
    # The base comes from a build argument: python:3.11-slim, pinned by digest, for everyone;
    # scripts/image-test gives a locally made Debian base where no registry is reachable.
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim@sha256:[0-9a-f]{64}$", dockerfile, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.M)
    # tini is PID 1; the health check asks the port the server was given.
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile
    assert "VITRINE_SERVER_PORT" in dockerfile.split("HEALTHCHECK", 1)[1]
    # The lock holds setuptools, which the editable install builds with (no index needed).
    assert re.search(r"^setuptools==", (ROOT / "requirements.lock").read_text(), re.M)
    assert re.search(r"^USER (?!root|0\b)", dockerfile, flags=re.M)


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_locks_pin_every_dependency() -> None:
    for lock in ("requirements.lock", "requirements-dev.lock"):
        text = (ROOT / lock).read_text()
        pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", text, flags=re.M)
        assert len(pins) > 10
        assert text.count("--hash=sha256:") >= len(pins)
    runtime = dict(
        re.findall(
            r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", (ROOT / "requirements.lock").read_text(), flags=re.M
        )
    )
    for name in (
        "quart",
        "hypercorn",
        "aiosqlite",
        "aiortc",
        "av",
        "websockets",
        "jinja2",
        "babel",
    ):
        assert name in runtime, f"{name} is not pinned"


def test_every_room_message_is_documented() -> None:
    from appliance.engagement.service import NOTICES as ENGAGEMENT_NOTICES
    from appliance.room.handlers import HANDLERS, NOTICES

    doc = (ROOT / "docs" / "protocol.md").read_text()
    client_section, server_section = doc.split("## Server → client")
    for kind in HANDLERS:
        assert f"| `{kind}` |" in client_section, f"client message {kind} is undocumented"
    sent = set()
    modules = ["room/hub.py", "room/handlers.py"]
    modules += [f"engagement/{name}.py" for name in ("service", "polls", "giveaways")]
    for module in modules:
        sent |= set(re.findall(r'"type": "(\w+)"', (ROOT / "appliance" / module).read_text()))
    assert {"welcome", "state", "chat", "hearts", "product"} <= sent
    for kind in sent:
        assert f"| `{kind}` |" in server_section, f"server message {kind} is undocumented"
    for code in {**NOTICES, **ENGAGEMENT_NOTICES}:
        assert f"`{code}`" in server_section, f"notice code {code} is undocumented"
