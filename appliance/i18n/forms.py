"""Form parsing: each helper returns a clean value or records a readable error.

Views build a `Form` over the submitted fields, read every field through it, and
only touch the store when `form.errors` is empty, so a bad submission never leaves a
half-written record.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from appliance.i18n.locales import currency_digits
from appliance.i18n.translate import _

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_MINOR = 10**11  # a billion in any currency: anything above is a typo


def clean_text(value: str, multiline: bool = False) -> str:
    value = unicodedata.normalize("NFC", value)
    value = _CONTROL.sub("", value)
    if not multiline:
        value = value.replace("\r", " ").replace("\n", " ")
    return value.strip()


class Form:
    def __init__(self, data: Mapping[str, str]) -> None:
        if isinstance(data, MultiDict) and any(not isinstance(k, str) for k in data):
            # A multipart part whose name the parser could not read (a line break in
            # it) comes with the name None: such a field is nobody's.
            data = MultiDict([(k, v) for k, v in data.items(multi=True) if isinstance(k, str)])
        self.data = data
        self.errors: dict[str, str] = {}

    def raw(self, name: str) -> str:
        value = self.data.get(name, "")
        return value if isinstance(value, str) else ""

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def text(self, name: str, max_len: int, required: bool = True, multiline: bool = False) -> str:
        value = clean_text(self.raw(name), multiline)
        if required and not value:
            self.error(name, _("This field is required."))
        elif len(value) > max_len:
            self.error(name, _("Keep this under %(n)s characters.", n=max_len))
        return value[:max_len]

    def choice(self, name: str, choices: Iterable[str], default: str | None = None) -> str:
        value = self.raw(name).strip() or (default or "")
        allowed = list(choices)
        if value not in allowed:
            self.error(name, _("Choose one of the offered values."))
            return allowed[0]
        return value

    def integer(self, name: str, low: int, high: int, required: bool = True) -> int | None:
        text = self.raw(name).strip()
        if not text:
            if required:
                self.error(name, _("This field is required."))
            return None
        try:
            value = int(text)
        except ValueError:
            self.error(name, _("Enter a whole number."))
            return None
        if not low <= value <= high:
            self.error(name, _("Enter a number from %(low)s to %(high)s.", low=low, high=high))
            return None
        return value

    def url(self, name: str, required: bool = False) -> str:
        value = self.text(name, 2000, required=required)
        if value and not is_web_url(value):
            self.error(name, _("Enter a full web address starting with https:// or http://."))
            return ""
        return value

    def money(self, name: str, currency: str) -> int:
        minor = parse_money(self.raw(name), currency)
        if minor is None:
            self.error(name, _("Enter a price like 19.90."))
            return 0
        return minor

    def when(self, name: str, tz: str) -> int:
        """A `datetime-local` value read in the shop's time zone, as Unix seconds."""
        ts = parse_local_datetime(self.raw(name), tz)
        if ts is None:
            self.error(name, _("Enter a date and time."))
            return 0
        return ts

    def checkbox(self, name: str) -> bool:
        return self.raw(name) in ("on", "1", "true", "yes")


def is_web_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and " " not in value


def parse_money(text: str, currency: str) -> int | None:
    """'19.90', '19,90' or '1 299' in major units -> integer minor units."""
    text = text.strip().replace("\u00a0", "").replace(" ", "")
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    if not re.fullmatch(r"\d{1,12}(\.\d{1,3})?", text):
        return None
    digits = currency_digits(currency)
    try:
        value = Decimal(text) * (10**digits)
    except InvalidOperation:
        return None
    if value != value.to_integral_value() or value > MAX_MINOR:
        return None
    return int(value)


def format_minor_plain(minor: int, currency: str) -> str:
    """Minor units back to the plain '19.90' a form field shows."""
    digits = currency_digits(currency)
    if digits == 0:
        return str(minor)
    return f"{minor // 10**digits}.{minor % 10**digits:0{digits}d}"


def parse_local_datetime(text: str, tz: str) -> int | None:
    text = text.strip()
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            naive = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if not 2000 <= naive.year <= 2100:
            return None
        return int(naive.replace(tzinfo=ZoneInfo(tz)).timestamp())
    return None


def local_datetime_value(ts: int, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")
