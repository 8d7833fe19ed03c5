"""The one translation layer: gettext catalogues, locale choice and locale formatting.

Catalogues are the `.po` files under web/translations; they are compiled in memory at
start, so no generated `.mo` file is ever committed or forgotten.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import dates, numbers
from babel.messages import mofile, pofile
from babel.support import NullTranslations, Translations

from appliance.paths import TRANSLATIONS_DIR

LANGUAGES = ("en", "fr")
DEFAULT_LANGUAGE = "en"


def load_catalogues(directory: Path = TRANSLATIONS_DIR) -> dict[str, NullTranslations]:
    found: dict[str, NullTranslations] = {"en": NullTranslations()}
    for lang in LANGUAGES:
        po_path = directory / lang / "LC_MESSAGES" / "messages.po"
        if lang == "en" or not po_path.exists():
            continue
        with po_path.open("rb") as fh:
            catalog = pofile.read_po(fh, locale=lang)
        buf = io.BytesIO()
        mofile.write_mo(buf, catalog)
        buf.seek(0)
        found[lang] = Translations(fp=buf)
    return found


def pick_language(accept_language: str | None, shop_default: str) -> str:
    """The first language of the viewer's Accept-Language Vitrine speaks, else the shop's."""
    default = shop_default if shop_default in LANGUAGES else DEFAULT_LANGUAGE
    if not accept_language:
        return default
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = tag.strip().lower().split("-")[0]
        if lang == "*":
            lang = default
        if lang and q > 0:
            weighted.append((-q, index, lang))
    for _, _, lang in sorted(weighted):
        if lang in LANGUAGES:
            return lang
    return default


def currency_digits(currency: str) -> int:
    return int(numbers.get_currency_precision(currency))


def format_money(minor: int, currency: str, lang: str) -> str:
    value = minor / (10 ** currency_digits(currency))
    return str(numbers.format_currency(value, currency, locale=lang))


def format_when(ts: int | float, tz: str, lang: str, fmt: str = "medium") -> str:
    """'Mon, Nov 30, 2026 · 6:00 PM' (medium) or with the full date (long), in `tz`."""
    zone = ZoneInfo(tz)
    moment = datetime.fromtimestamp(ts, UTC).astimezone(zone)
    if fmt == "long":
        day = dates.format_date(moment, format="full", locale=lang)
    else:
        day = dates.format_skeleton("yMMMEd", moment, tzinfo=zone, locale=lang)
    return f"{day} · {format_time(ts, tz, lang)}"


def format_date(ts: int | float, tz: str, lang: str, fmt: str = "full") -> str:
    moment = datetime.fromtimestamp(ts, UTC).astimezone(ZoneInfo(tz))
    return str(dates.format_date(moment, format=fmt, locale=lang))


def format_time(ts: int | float, tz: str, lang: str) -> str:
    moment = datetime.fromtimestamp(ts, UTC)
    return str(dates.format_time(moment, format="short", tzinfo=ZoneInfo(tz), locale=lang))


def known_currencies() -> Iterable[str]:
    return sorted(numbers.list_currencies())
