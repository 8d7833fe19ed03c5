"""`_()` for Python code: translates into the language picked for the current request."""

from __future__ import annotations

from typing import Any

from quart import g, has_app_context


def _translations() -> Any:
    return getattr(g, "translations", None) if has_app_context() else None


def _(message: str, **variables: Any) -> str:
    t = _translations()
    text = t.gettext(message) if t is not None else message
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    t = _translations()
    text = t.ngettext(singular, plural, n) if t is not None else (singular if n == 1 else plural)
    variables.setdefault("num", n)
    return text % variables


def ngettext_form(singular: str, plural: str, n: int) -> str:
    """The translated form for `n`, placeholders left in: Jinja's newstyle ngettext fills
    them (`num` included, which may be a JS placeholder such as '{n}')."""
    t = _translations()
    text: str = t.ngettext(singular, plural, n) if t is not None else (singular, plural)[n != 1]
    return text


def N_(text: str) -> str:
    """Marks a text for translation where it is defined; `_()` translates it where shown."""
    return text
