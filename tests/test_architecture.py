"""The folders show the architecture: docs/architecture.md's map matches the packages of
appliance/ and the imports between them, and only the assembly sits at the top.

The import rules themselves (the media plane, the pure KPI engine, views) are
import-linter contracts in pyproject.toml, run by scripts/test; the pure engine is also
checked here against the standard library's own list of modules.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLIANCE = ROOT / "appliance"
ASSEMBLY = {"__init__", "__main__", "app", "cli", "config", "services", "serving", "paths", "logs"}
ROW = re.compile(r"^\| `([\w.]+)` \|[^|]*\|([^|]*)\|$")


def map_rows() -> dict[str, set[str]]:
    """The map's table: each package it names and the packages it says that one imports."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Map", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        found = ROW.match(line.strip())
        if found:
            name, uses = found.groups()
            assert name not in rows, f"{name} has two rows in the map"
            rows[name] = {u.strip() for u in uses.split(",") if u.strip()}
    assert len(rows) > 5, "docs/architecture.md has lost its map"
    return rows


@functools.cache
def packages() -> frozenset[str]:
    """Every package of appliance/ but those that only carry data files beside an
    `__init__.py` (storage/migrations holds the schema's .sql files)."""
    found = set()
    for init in APPLIANCE.rglob("__init__.py"):
        folder = init.parent
        if folder == APPLIANCE:
            continue
        files = [p for p in folder.iterdir() if p.name not in ("__init__.py", "__pycache__")]
        data_only = bool(files) and all(p.is_file() and p.suffix != ".py" for p in files)
        if not data_only:
            found.add(".".join(folder.relative_to(APPLIANCE).parts))
    return frozenset(found)


def package_of(module: str) -> str:
    """`appliance.room.hub` -> `room`, `appliance.views.api.room` -> `views.api`,
    `appliance.app` -> `app`, `media.relay` -> `media`."""
    parts = module.split(".")
    if parts[0] != "appliance":
        return parts[0]
    known = packages()
    for depth in range(len(parts), 1, -1):
        if ".".join(parts[1:depth]) in known:
            return ".".join(parts[1:depth])
    return parts[1] if len(parts) > 1 else "appliance"


def imports_of(path: Path) -> set[str]:
    """The absolute modules a file imports (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_package_in_the_map_exists() -> None:
    named = set(map_rows()) - {"media"}
    missing = named - packages()
    assert not missing, f"docs/architecture.md names packages that do not exist: {missing}"
    assert (ROOT / "media" / "__init__.py").exists()


def test_every_package_is_in_the_map() -> None:
    unnamed = packages() - set(map_rows())
    assert not unnamed, f"packages missing from docs/architecture.md's map: {unnamed}"


def test_only_the_assembly_sits_at_the_top_of_appliance() -> None:
    loose = {p.stem for p in APPLIANCE.glob("*.py")} - ASSEMBLY
    assert not loose, f"modules outside a capability package: {loose} (move them into one)"


def test_the_maps_arrows_are_the_imports_between_packages() -> None:
    """Each row's imports are exactly the packages its modules import (the assembly's
    modules, config and paths included; a package's own modules left out)."""
    rows = map_rows()
    actual: dict[str, set[str]] = {name: set() for name in rows}
    for path in APPLIANCE.rglob("*.py"):
        source = package_of(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if source not in rows:
            continue  # the assembly: it imports everything
        for module in imports_of(path):
            if module.split(".")[0] in ("appliance", "media"):
                target = package_of(module)
                if target != source and target != "appliance":
                    actual[source].add(target)
    for path in (ROOT / "media").rglob("*.py"):
        for module in imports_of(path):
            if module.split(".")[0] == "appliance":
                actual["media"].add(package_of(module))
    wrong = {
        name: {"drawn, not imported": rows[name] - found, "imported, not drawn": found - rows[name]}
        for name, found in actual.items()
        if found != rows[name]
    }
    assert not wrong, f"docs/architecture.md's map disagrees with the imports: {wrong}"


def test_the_kpi_engine_imports_only_the_standard_library() -> None:
    engine = APPLIANCE / "kpis" / "engine.py"
    outside = {m for m in imports_of(engine) if m.split(".")[0] not in sys.stdlib_module_names} - {
        "__future__"
    }
    assert not outside, f"the KPI engine must stay pure, it imports {outside}"


@pytest.mark.parametrize(
    "module, package",
    [
        ("appliance.room.hub", "room"),
        ("appliance.views.api.room", "views.api"),
        ("appliance.views.web", "views"),
        ("appliance.storage.migrations", "storage"),
        ("appliance.app", "app"),
        ("media.relay", "media"),
    ],
)
def test_package_of(module: str, package: str) -> None:
    assert package_of(module) == package
