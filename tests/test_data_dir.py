"""A data directory the server may not write (a root-owned host folder bind-mounted on
the container's /data) stops every command with one line, not a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SETPRIV = shutil.which("setpriv")
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason="needs root and setpriv to run the command as another user",
)
NOBODY = 65534


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder of root's that others may enter (pytest's own tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="vitrine-datadir-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def run_as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    assert SETPRIV is not None
    return subprocess.run(
        [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         sys.executable, "-m", "appliance", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")},
    )  # fmt: skip


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["seed-demo"]])
def test_a_root_owned_data_directory_is_one_line(folder: Path, command: list[str]) -> None:
    data = folder / "data"
    data.mkdir(mode=0o755)  # root's, as `mkdir /srv/vitrine` as root makes it
    result = run_as_nobody(*command, "--data-dir", str(data))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"vitrine: cannot write the data directory {data}: it belongs to uid 0 and this "
        f"process runs as uid {NOBODY}. Give it to this user (on the host: chown "
        f"{NOBODY}:{NOBODY} FOLDER) or use a named volume."
    ]
    assert not list(data.iterdir())


def test_a_data_directory_that_cannot_be_made_is_one_line(folder: Path) -> None:
    result = run_as_nobody("migrate", "--data-dir", str(folder / "new" / "data"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"vitrine: cannot make the data directory {folder / 'new' / 'data'}: {folder} "
        "belongs to uid 0"
    )
    assert len(result.stderr.splitlines()) == 1


def test_a_data_directory_behind_a_closed_folder_is_one_line(folder: Path) -> None:
    (folder / "closed").mkdir(mode=0o700)
    data = folder / "closed" / "data"
    result = run_as_nobody("migrate", "--data-dir", str(data))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"vitrine: cannot reach the data directory {data}: Permission denied."
    ]
