"""The front end's ES modules (web/static/js, no build step): every import names a file that
exists and a name that file exports, the import graph has no cycle, every script a template
loads exists and is loaded as a module, each module says what it holds in its first line and
stays small, and the app serves each one with a JavaScript content type (browsers refuse a
module served as anything else)."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from quart.testing import QuartClient

from tests.conftest import PASSWORD, ROOT, LiveServer
from tests.test_browser_live import ARGS, CHROMIUM

JS = ROOT / "web" / "static" / "js"
TEMPLATES = ROOT / "web" / "templates"
MAX_LINES = 400  # the old page scripts were 500 to 750 lines; aim for under 250
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
JINJA = re.compile(r"\{%.*?%\}|\{#.*?#\}|\{\{.*?\}\}", re.DOTALL)

browser_only = pytest.mark.skipif(
    not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
    reason="Debian's chromium is not installed (.ci/run installs it)",
)


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
        # Tags inside Jinja statements and expressions are text (a snippet to copy), not scripts.
        markup = JINJA.sub("", template.read_text())
        for attrs in SCRIPT_TAG.findall(markup):
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
    # One line that says what the file holds; details, if any, on the lines after it.
    assert lines[0].startswith("// ") and 20 < len(lines[0]) <= 100, f"{rel(path)}: {lines[0]!r}"
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
        assert src.startswith("/static/"), f"{template} loads {src} from elsewhere"
        path = JS.parent / src.removeprefix("/static/")
        assert path.is_file(), f"{template} loads {src}, which does not exist"
        if path.parent == JS or JS in path.parents:
            assert 'type="module"' in attrs, f"{template} loads {src} as a classic script"


def test_every_module_is_reached_from_a_page() -> None:
    """A module no page loads and no module imports is dead code left by a split."""
    reached: set[Path] = set()
    loaded = [JS.parent / src.removeprefix("/static/") for _, src, _ in template_scripts()]
    todo = [path for path in loaded if JS in path.parents]
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


def watch(page: Any, errors: list[str]) -> None:
    """Collects the page's uncaught errors, console errors and refused script loads."""
    page.on("pageerror", lambda err: errors.append(f"pageerror: {err}"))

    def console(msg: Any) -> None:
        # The browser's own request for /favicon.ico (Vitrine has none) is no script's doing.
        if msg.type == "error" and not msg.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"console: {msg.text} {msg.location}")

    page.on("console", console)
    page.on(
        "response",
        lambda r: errors.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
    )
    page.on(
        "requestfailed",
        lambda req: errors.append(f"failed: {req.url}") if "/static/" in req.url else None,
    )


@browser_only
async def test_the_pages_run_their_modules_under_the_real_csp(live_server: LiveServer) -> None:
    """No bypass_csp here: the show page, the studio and the admin show page load their
    modules under the app's own Content-Security-Policy, and a viewer and a host go through
    the chat, a question, an offer, a heart and a mute with no script error on either side."""
    from playwright.async_api import async_playwright

    live_server.cli("seed-demo")
    live_server.cli_input(
        ["create-admin", "--email", "host@example.com", "--name", "Hal", "--password-stdin"],
        PASSWORD,
    )
    show = json.loads(
        live_server.cli("shows", "create", "--title", "Modules", "--starts-at", "2030-01-01T10:00")
    )["id"]
    with sqlite3.connect(live_server.data_dir / "vitrine.sqlite3") as conn:
        conn.execute(
            "INSERT INTO show_products (show_id, product_id, position) VALUES (?, 2, 0)", (show,)
        )
    errors: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            phone = await browser.new_context(viewport={"width": 390, "height": 844})
            viewer = await phone.new_page()
            watch(viewer, errors)
            await viewer.goto(f"{live_server.url}/shows/{show}")
            await viewer.wait_for_function("() => document.body.dataset.roomState === 'open'")
            await viewer.wait_for_function("() => document.body.dataset.playerState === 'waiting'")
            assert await viewer.get_attribute("#pinned", "hidden") is not None

            laptop = await browser.new_context(viewport={"width": 1280, "height": 900})
            host = await laptop.new_page()
            watch(host, errors)
            await host.goto(f"{live_server.url}/login?next=/studio/{show}")
            await host.fill("#f-email", "host@example.com")
            await host.fill("#f-password", PASSWORD)
            await host.click("button[type=submit]")
            await host.wait_for_function("() => document.body.dataset.roomStaff === 'true'")
            await host.wait_for_function("() => document.body.dataset.studioState === 'offline'")
            await host.wait_for_function("() => !document.getElementById('go-live').disabled")

            # A question from a viewer without a name: the name form first, then the queue.
            await viewer.fill("#chat-input", "Is it <i>silk</i>?")
            await viewer.check("#chat-question")
            await viewer.click("#chat-send")
            await viewer.fill("#name-input", "Ana")
            await viewer.click("#name-save")
            await viewer.wait_for_function("() => document.body.dataset.chatCount === '1'")
            await host.wait_for_function("() => document.body.dataset.questionCount === '1'")
            assert await host.text_content("#questions .msg-text") == "Is it <i>silk</i>?"
            await host.click("#questions button[data-action=answer]")
            await viewer.wait_for_selector("#chat-messages li.is-answered")
            await host.wait_for_function("() => document.body.dataset.questionCount === '0'")

            # A pinned product, an offer and a heart reach the viewer.
            await host.click("#pin-product-2")
            await viewer.wait_for_selector("#pinned:not([hidden])")
            await host.fill("#offer-code-input", "SILK10")
            await host.click("#offer-start")
            await viewer.wait_for_selector("#offer:not([hidden])")
            assert await viewer.text_content("#offer-code") == "SILK10"
            assert (await host.text_content("#mod-offer-code")) == "SILK10"
            await viewer.click("#heart")

            # A mute is listed with its undo; the viewer's next message is refused and
            # given back to its author.
            await host.click("#mod-messages li button[data-action=mute]")
            await host.wait_for_function("() => document.body.dataset.sanctionCount === '1'")
            await viewer.fill("#chat-input", "hello?")
            await viewer.click("#chat-send")
            await viewer.wait_for_selector("#chat-notice:not([hidden])")
            await viewer.wait_for_function(
                "() => document.getElementById('chat-input').value === 'hello?'"
            )

            # The shared helpers, imported as any module imports them.
            found = await viewer.evaluate(
                """async () => {
                  const dom = await import('/static/js/dom.js');
                  const words = await import('/static/js/words.js');
                  const links = ['javascript:alert(1)', '//evil.example/x', '/p/1',
                                 'https://shop.example.com/a', 'data:text/html,x'];
                  return {
                    links: links.map(dom.safeUrl),
                    clocks: [words.clock(75), words.clock(3725), words.clock(-3)],
                    format: words.format('{n} of {m}, {x}', {n: 2, m: 5}),
                  };
                }"""
            )
            assert found == {
                "links": [None, None, "/p/1", "https://shop.example.com/a", None],
                "clocks": ["1:15", "1:02:05", "0:00"],
                "format": "2 of 5, {x}",
            }

            # The admin show page runs the same panel.
            admin = await laptop.new_page()
            watch(admin, errors)
            await admin.goto(f"{live_server.url}/admin/shows/{show}")
            await admin.wait_for_function("() => document.body.dataset.roomStaff === 'true'")
            await admin.wait_for_function("() => document.body.dataset.sanctionCount === '1'")
        finally:
            await browser.close()
    assert errors == [], "\n".join(errors)


async def test_scripts_and_styles_are_revalidated_after_an_upgrade(client: QuartClient) -> None:
    """A cached old module beside a new one breaks a page: the browser asks each time."""
    first = await client.get("/static/js/room.js")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-cache"
    etag = first.headers.get("ETag")
    assert etag
    again = await client.get("/static/js/room.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    style = await client.get("/static/css/vitrine.css")
    assert style.headers["Cache-Control"] == "no-cache"
