"""The `vitrine` command, run as a real subprocess against a real data directory."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.storage.db import latest_version
from tests.conftest import PASSWORD, ROOT

COMMANDS = [
    ["serve"],
    ["migrate"],
    ["create-admin"],
    ["backup"],
    ["restore"],
    ["seed-demo"],
    ["shows"],
    ["shows", "list"],
    ["shows", "create"],
]


def vitrine(
    *args: str, data_dir: Path | None = None, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = [sys.executable, "-m", "appliance", *args]
    if data_dir is not None:
        full += ["--data-dir", str(data_dir)]
    return subprocess.run(
        full,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", [[], *COMMANDS])
def test_help_everywhere(command: list[str]) -> None:
    result = vitrine(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: vitrine" in result.stdout
    if command and command != ["shows"]:
        assert "--config" in result.stdout


def test_migrate_seed_and_shows(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = vitrine("migrate", data_dir=data)
    assert result.returncode == 0 and f"schema version {latest_version()}" in result.stdout
    assert vitrine("migrate", data_dir=data).stdout.startswith("applied 0 migration(s)")
    assert "created the demo shop" in vitrine("seed-demo", data_dir=data).stdout
    assert "left as is" in vitrine("seed-demo", data_dir=data).stdout
    with sqlite3.connect(data / "vitrine.sqlite3") as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM products WHERE image IS NOT NULL").fetchone()[0] == 4
        )
        statuses = sorted(r[0] for r in conn.execute("SELECT status FROM shows"))
    assert statuses == ["ended", "scheduled"]

    created = vitrine(
        "shows",
        "create",
        "--title",
        "Black Friday live",
        "--starts-at",
        "2030-11-29T18:00",
        data_dir=data,
    )
    assert created.returncode == 0, created.stderr
    show = json.loads(created.stdout)
    assert show["page_url"] == f"http://127.0.0.1:8080/shows/{show['id']}"
    assert show["whip_url"] == f"http://127.0.0.1:8080/whip/{show['id']}"
    assert show["stream_key"].startswith("sk_")
    assert show["starts_at"] == "2030-11-29T17:00:00+00:00"  # 18:00 Paris time
    listed = [
        json.loads(line) for line in vitrine("shows", "list", data_dir=data).stdout.splitlines()
    ]
    assert show["id"] in [s["id"] for s in listed] and len(listed) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--title", "", "--starts-at", "2030-01-01T10:00"], "--title must be"),
        (["--title", "T", "--starts-at", "next friday"], "not an ISO 8601"),
        (
            ["--title", "T", "--starts-at", "2030-01-01T10:00", "--duration", "0"],
            "--duration must be",
        ),
    ],
)
def test_shows_create_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = vitrine("shows", "create", *args, data_dir=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr


def test_create_admin_and_backup(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = vitrine(
        "create-admin",
        "--email",
        "me@example.com",
        "--password-stdin",
        data_dir=data,
        stdin=PASSWORD + "\n",
    )
    assert result.returncode == 0, result.stderr
    again = vitrine(
        "create-admin",
        "--email",
        "ME@example.com",
        "--password-stdin",
        data_dir=data,
        stdin=PASSWORD + "\n",
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = vitrine(
        "create-admin",
        "--email",
        "x@example.com",
        "--password-stdin",
        data_dir=data,
        stdin="short\n",
    )
    assert weak.returncode == 2 and "password refused" in weak.stderr
    vitrine("seed-demo", data_dir=data)
    out = tmp_path / "backup"
    result = vitrine("backup", "--output", str(out), data_dir=data)
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(out / "vitrine.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT email FROM users").fetchall() == [("me@example.com",)]
        assert conn.execute("SELECT COUNT(*) FROM products").fetchone()[0] == 4
    assert len(list((out / "uploads").iterdir())) == 6  # 4 products, 2 covers


def test_config_file_and_bad_values(tmp_path: Path) -> None:
    cfg = tmp_path / "vitrine.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "from-file"}"\n')
    assert vitrine("migrate", "--config", str(cfg)).returncode == 0
    assert (tmp_path / "from-file" / "vitrine.sqlite3").exists()
    result = vitrine("migrate", "--config", str(cfg), env={"VITRINE_SERVER_PORT": "http"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "vitrine: configuration error: server.port: expected an integer, got 'http'"
    )


def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    vitrine("migrate", data_dir=data)
    with sqlite3.connect(data / "vitrine.sqlite3") as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 0)")
    result = vitrine("migrate", data_dir=data)
    assert result.returncode == 3
    assert "schema version 99" in result.stderr
