"""The repository's own plumbing: lock files and the CI entry point."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

LOCKS = sorted(ROOT.glob("requirements*.lock"))
# Options that tie a lock to one machine's package mirror or wheel folder.
INDEX_OPTION = re.compile(r"^\s*(--extra-index-url|--index-url|--find-links|-f\s|-i\s)")


def test_there_are_lock_files() -> None:
    assert {p.name for p in LOCKS} >= {"requirements.lock", "requirements-dev.lock"}


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: p.name)
def test_locks_carry_no_index_or_find_links_lines(lock) -> None:
    """pip warns once per package about a --find-links folder that is not there, burying
    the one-time setup link a newcomer needs under a hundred lines."""
    found = [
        f"{lock.name}:{n}: {line}"
        for n, line in enumerate(lock.read_text().splitlines(), 1)
        if INDEX_OPTION.match(line)
    ]
    assert not found, found


def test_ci_stops_on_error_and_updates_apt_before_installing() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in lines if line and not line.startswith("#")]

    def first(pattern: str) -> int:
        hits = [i for i, line in enumerate(commands) if re.search(pattern, line)]
        assert hits, f"no line matches {pattern!r} in .ci/run"
        return hits[0]

    strict = first(r"^set -euo pipefail$")
    update = first(r"\bapt-get update\b")
    install = first(r"\bapt-get install\b")
    assert strict < first(r"\bapt-get\b"), "set -euo pipefail must come before any apt-get"
    assert update < install, "apt-get update must run before apt-get install"
    # Every line that installs packages comes after the update.
    assert all(i > update for i, line in enumerate(commands) if "apt-get install" in line)
    # The last command runs the test suite, named exactly.
    assert commands[-1] in ("scripts/test", "exec scripts/test"), commands[-1]
