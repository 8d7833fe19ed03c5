"""Every user-facing string goes through the translation layer, and catalogues are fresh."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po
from jinja2 import Environment
from quart.testing import QuartClient

from appliance.catalog.products import ProductData, create_product
from appliance.catalog.shows import ShowData, create_show
from appliance.i18n.locales import LANGUAGES, format_money, pick_language
from appliance.paths import TEMPLATES_DIR, TRANSLATIONS_DIR
from appliance.services import Services

ROOT = Path(__file__).resolve().parent.parent
TRANSLATABLE_ATTRS = re.compile(r'\b(alt|title|placeholder|aria-label|label)="([^"\x00]*)"')
# Tokens that are not text: CSS classes given in {% block body_class %}, machine values of
# <meta content> (Open Graph types, card kinds).
NOT_TEXT = {"site", "admin", "show-page", "studio", "website", "video.other", "summary_large_image"}


def untranslated_literals(source: str) -> list[str]:
    """Words of a template that a viewer would read but no translation call produced.

    The template is lexed; each Jinja tag or expression becomes a marker, so HTML tags
    that contain Jinja still parse as tags; text inside {% trans %} blocks is skipped.
    """
    env = Environment(extensions=["jinja2.ext.i18n"])
    parts: list[str] = []
    in_trans = expect_tag_name = False
    for _line, kind, value in env.lex(source):
        if kind == "data":
            if not in_trans:
                parts.append(value)
        elif kind in ("block_begin", "variable_begin"):
            parts.append("\x00")
            expect_tag_name = kind == "block_begin"
        elif kind == "name" and expect_tag_name:
            in_trans = {"trans": True, "endtrans": False}.get(value, in_trans)
            expect_tag_name = False
    text = re.sub(
        r"<!--.*?-->|<script.*?</script>|<style.*?</style>", " ", "".join(parts), flags=re.S
    )
    found: list[str] = []
    for tag in re.findall(r"<[^>]*>", text):
        found += [v for _k, v in TRANSLATABLE_ATTRS.findall(tag) if re.search(r"[A-Za-z]", v)]
        if tag.startswith("<meta") and 'name="description"' in tag:
            found += re.findall(r'content="([^"\x00]*[A-Za-z][^"\x00]*)"', tag)
    visible = re.sub(r"<[^>]*>", " ", text)
    visible = re.sub(r"&[a-z]+;|&#\d+;", " ", visible)
    words = re.findall(r"[^\W\d_][\w.'’-]*", visible)
    return [w for w in found + words if w not in NOT_TEXT]


def test_the_literal_check_catches_literals() -> None:
    assert untranslated_literals("<p>Hello {{ name }}</p>") == ["Hello"]
    assert untranslated_literals('<img alt="A photo" src="{{ x }}">') == ["A photo"]
    assert untranslated_literals("<p>{{ _('Hello') }}</p><!-- note -->") == []
    assert untranslated_literals('<a href="/x" class="button">{{ _("Go") }}</a>') == []
    assert (
        untranslated_literals('<div class="f{% if e %} has-error{% endif %}">{{ x }}</div>') == []
    )
    assert untranslated_literals("{% trans %}Hello{% endtrans %} world") == ["world"]


@pytest.mark.parametrize(
    "template",
    sorted(p.relative_to(TEMPLATES_DIR).as_posix() for p in TEMPLATES_DIR.rglob("*.html")),
)
def test_templates_have_no_untranslated_literals(template: str) -> None:
    assert untranslated_literals((TEMPLATES_DIR / template).read_text()) == []


def extracted_messages() -> set[str]:
    method_map = [("appliance/**.py", "python"), ("web/templates/**.html", "jinja2")]
    options = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": DEFAULT_KEYWORDS["_"], "N_": None, "ngettext": (1, 2)}
    ids = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        ROOT, method_map, options, keywords
    ):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_catalogue_is_fresh_and_complete(lang: str) -> None:
    with (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    in_catalog = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    in_code = extracted_messages()
    assert in_code, "extraction found nothing: the check itself is broken"
    assert sorted(in_code - in_catalog) == [], "catalogue is stale: run scripts/i18n"
    assert sorted(in_catalog - in_code) == [], "catalogue has obsolete entries: run scripts/i18n"
    untranslated = [
        m.id
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))
    ]
    assert untranslated == []
    assert not [m.id for m in catalog if m.id and m.fuzzy]
    assert list(catalog.check()) == []


def test_language_choice() -> None:
    assert pick_language(None, "fr") == "fr"
    assert pick_language("fr-CA,fr;q=0.9,en;q=0.8", "en") == "fr"
    assert pick_language("de-DE,de;q=0.9,en;q=0.5", "fr") == "en"
    assert pick_language("de, es", "fr") == "fr"
    assert pick_language("en;q=0.2, fr;q=0.9", "en") == "fr"
    assert pick_language("garbage;q=x,,;", "en") == "en"


def test_money_is_formatted_for_the_locale() -> None:
    assert format_money(5990, "EUR", "en") == "€59.90"
    assert format_money(5990, "EUR", "fr") == "59,90\u00a0€"
    assert format_money(1500, "JPY", "en") == "¥1,500"


async def test_viewer_pages_speak_french(client: QuartClient, services: Services) -> None:
    pid = await create_product(
        services.db,
        ProductData("Foulard", "", None, 7500, "EUR", "low_stock", "https://s.example/f", ""),
        None,
    )
    show_id = await create_show(
        services.db, ShowData("Nouveautés", "", 1_900_000_000, 60, None), product_ids=[pid]
    )
    fr = {"Accept-Language": "fr-FR,fr;q=0.9"}
    home = await (await client.get("/", headers=fr)).get_data(as_text=True)
    assert '<html lang="fr">' in home and "Émissions à venir" in home
    page = await (await client.get(f"/shows/{show_id}", headers=fr)).get_data(as_text=True)
    assert "75,00\u00a0€" in page
    assert "Ajouter à l’agenda" in page
    assert "mars 2030" in page  # 1_900_000_000 is 17 March 2030
    en = await (
        await client.get(f"/shows/{show_id}", headers={"Accept-Language": "en-GB"})
    ).get_data(as_text=True)
    assert "€75.00" in en and "Add to calendar" in en and "March" in en
