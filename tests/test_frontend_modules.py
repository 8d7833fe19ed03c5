"""The front end's ES modules (web/static/js, no build step): every import names a file that
exists and a name that file exports, the import graph has no cycle, every script a template
loads exists and is loaded as a module, each module says what it holds in its first line and
stays small, and the app serves each one with a JavaScript content type (browsers refuse a
module served as anything else)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from quart.testing import QuartClient

from tests.conftest import ROOT

JS = ROOT / "web" / "static" / "js"
TEMPLATES = ROOT / "web" / "templates"
MAX_LINES = 300
# The snippet the shop puts on its own pages: a classic script, loaded from another site.
CLASSIC = {"vitrine-shop.js"}

SCRIPTS = sorted(JS.rglob("*.js"))
MODULES = [p for p in SCRIPTS if p.relative_to(JS).as_posix() not in CLASSIC]
SOURCES = {p.relative_to(JS).as_posix(): p.read_text() for p in MODULES}

IMPORT = re.compile(r"^import\s+(?:\{([^}]*)\}\s+from\s+)?\"([^\"]+)\";", re.MULTILINE)
EXPORT_DECL = re.compile(
    r"^export\s+(?:async\s+)?(?:function|var|let|const)\s+([\w$]+)", re.MULTILINE
)
EXPORT_LIST = re.compile(r"^export\s+\{([^}]*)\}", re.MULTILINE)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def rel(path: Path) -> str:
    return path.relative_to(JS).as_posix()


def imports(path: Path) -> list[tuple[list[str], Path]]:
    """(imported names, target file) for each import statement of a module."""
    text = path.read_text()
    statements = IMPORT.findall(text)
    # Only one-line `import {a, b} from "./x.js";` (or `import "./x.js";`) is read here.
    assert len(statements) == len(re.findall(r"^import\b", text, re.MULTILINE)), rel(path)
    found = []
    for names, spec in statements:
        assert spec.startswith("./") or spec.startswith("../"), f"{rel(path)}: {spec!r}"
        listed = [n.split(" as ")[0].strip() for n in names.split(",") if n.strip()]
        found.append((listed, (path.parent / spec).resolve()))
    return found


def exports(path: Path) -> set[str]:
    text = path.read_text()
    names = set(EXPORT_DECL.findall(text))
    for group in EXPORT_LIST.findall(text):
        names |= {n.split(" as ")[-1].strip() for n in group.split(",") if n.strip()}
    return names


def template_scripts() -> list[tuple[str, str, str]]:
    """(template, src, the tag's attributes) for each <script src=...> of the templates."""
    found = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        for attrs in SCRIPT_TAG.findall(template.read_text()):
            src = re.search(r'src="([^"]+)"', attrs)
            assert src, f"{template.name}: an inline script (the CSP refuses it): {attrs!r}"
            found.append((template.relative_to(TEMPLATES).as_posix(), src.group(1), attrs))
    return found


def test_the_big_scripts_are_split() -> None:
    assert len(MODULES) >= 20, [rel(p) for p in MODULES]
    for entry in ("chat.js", "moderation.js", "player.js", "studio.js"):
        assert imports(JS / entry), f"{entry} imports nothing"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_every_import_names_a_file_and_a_name_it_exports(path: Path) -> None:
    for names, target in imports(path):
        assert target.is_file(), f"{rel(path)} imports {target}, which does not exist"
        assert JS in target.parents, f"{rel(path)} imports {target}, outside web/static/js"
        missing = set(names) - exports(target)
        assert not missing, f"{rel(path)} imports {sorted(missing)} that {rel(target)} lacks"


def test_the_import_graph_has_no_cycle() -> None:
    graph = {p.resolve(): [t for _, t in imports(p)] for p in MODULES}
    done: set[Path] = set()

    def visit(node: Path, trail: list[Path]) -> None:
        if node in trail:
            cycle = [rel(p) for p in trail[trail.index(node) :]] + [rel(node)]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        for target in graph.get(node, []):
            visit(target, [*trail, node])
        done.add(node)

    for node in graph:
        visit(node, [])


@pytest.mark.parametrize("path", SCRIPTS, ids=rel)
def test_every_script_says_what_it_holds_and_stays_small(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert lines[0].startswith("// ") and len(lines[0]) > 20, f"{rel(path)}: {lines[0]!r}"
    assert len(lines) <= MAX_LINES, f"{rel(path)} has {len(lines)} lines (at most {MAX_LINES})"


def test_every_script_a_template_loads_exists_and_is_a_module() -> None:
    found = template_scripts()
    assert {src for _, src, _ in found} >= {
        "/static/js/vitrine.js",
        "/static/js/chat.js",
        "/static/js/player.js",
        "/static/js/moderation.js",
        "/static/js/studio.js",
        "/static/js/replay.js",
        "/static/js/kpi.js",
    }
    for template, src, attrs in found:
        assert src.startswith("/static/js/"), f"{template}: {src}"
        path = JS / src.removeprefix("/static/js/")
        assert path.is_file(), f"{template} loads {src}, which does not exist"
        assert 'type="module"' in attrs, f"{template} loads {src} as a classic script"


def test_every_module_is_reached_from_a_page() -> None:
    """A module no page loads and no module imports is dead code left by a split."""
    reached: set[Path] = set()
    todo = [JS / src.removeprefix("/static/js/") for _, src, _ in template_scripts()]
    while todo:
        path = todo.pop().resolve()
        if path in reached:
            continue
        reached.add(path)
        todo.extend(target for _, target in imports(path))
    unreached = [rel(p) for p in MODULES if p.resolve() not in reached]
    assert not unreached, unreached


@pytest.mark.parametrize("name", [rel(p) for p in MODULES])
async def test_the_app_serves_every_module_as_javascript(client: QuartClient, name: str) -> None:
    r = await client.get(f"/static/js/{name}")
    assert r.status_code == 200
    assert r.mimetype in {"text/javascript", "application/javascript"}, r.mimetype
    assert (await r.get_data(as_text=True)) == SOURCES[name]
