"""The data directory is private: 0700 directories, 0600 files, and a warning when not.

It holds the session signing key, password hashes, stream keys and the conversion
secret; anyone else on the machine who can read it can forge an admin session.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from quart import Quart

from appliance.config import Config
from tests.conftest import ROOT, launch, stop


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args, "--data-dir", str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def assert_private(root: Path) -> None:
    """Everything under `root`, `root` included: 0700 directories, 0600 files."""
    loose = []
    for path in [root, *root.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if mode(path) != want:
            loose.append(f"{path.relative_to(root.parent)}: {oct(mode(path))}")
    assert not loose, loose


def test_served_and_cli_made_files_are_private(tmp_path: Path) -> None:
    """A real `vitrine serve`, then the CLI commands that write: nothing is readable by
    others, whatever umask they were started with."""
    data = tmp_path / "data"
    old = os.umask(0o022)  # what a login shell usually has
    try:
        server = launch(data, tmp_path / "server.log")
    finally:
        os.umask(old)
    try:
        assert mode(data) == 0o700
        assert mode(data / "vitrine.sqlite3") == 0o600
        # WAL mode: the server holds the -wal and -shm files open while it runs.
        assert mode(data / "vitrine.sqlite3-wal") == 0o600
        assert mode(data / "vitrine.sqlite3-shm") == 0o600
        server.cli("seed-demo")  # saves product pictures under uploads/
        assert any((data / "uploads").iterdir())
        server.cli("backup")
        assert any((data / "backups").iterdir())
        assert_private(data)
        assert "readable by other users" not in server.output()
    finally:
        stop(server)


def test_cli_alone_creates_a_private_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    cli(data, "migrate")
    assert_private(data)
    target = tmp_path / "copy"
    cli(data, "backup", "--output", str(target))
    assert_private(target)


async def test_app_makes_private_files_even_under_a_loose_umask(app: Quart, config: Config) -> None:
    """The modes are set where the files are made, not only by the CLI's umask (the test
    process runs with the usual 022)."""
    assert mode(config.data_dir) == 0o700
    assert mode(config.data_dir / "vitrine.sqlite3") == 0o600
    for suffix in ("-wal", "-shm"):
        wal = config.data_dir / f"vitrine.sqlite3{suffix}"
        if wal.exists():
            assert mode(wal) == 0o600, suffix


def test_start_warns_about_loose_permissions(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli(data, "migrate")
    os.chmod(data, 0o755)
    os.chmod(data / "vitrine.sqlite3", 0o644)
    server = launch(data, tmp_path / "server.log")
    try:
        log = server.output()
    finally:
        stop(server)
    warnings = [line for line in log.splitlines() if "WARNING" in line]
    dir_line = [w for w in warnings if f"{data} is readable by other users" in w]
    db_line = [w for w in warnings if f"{data / 'vitrine.sqlite3'} is readable" in w]
    assert dir_line and "0755" in dir_line[0] and f"chmod -R go-rwx {data}" in dir_line[0]
    assert db_line and "0644" in db_line[0] and "chmod 600" in db_line[0]
    # Only what is loose is named.
    assert not any("uploads" in w for w in warnings)


def test_container_image_makes_its_data_volume_private() -> None:
    """A new named volume takes the mode of the image's /data: 0700, or every container
    start would warn (and others in the container could read the database)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "mkdir -m 0700 /data" in dockerfile
