"""Add-to-calendar: an RFC 5545 event file and a Google Calendar link for a show."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%dT%H%M%SZ")


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after a space (RFC 5545 3.1)."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode()
        limit = 75 if not out else 74
        if len(current) + len(encoded) > limit:
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def show_event(
    *,
    show_id: int,
    title: str,
    description: str,
    starts_at: int,
    ends_at: int,
    url: str,
    shop_name: str,
    now: int,
) -> str:
    host = urlsplit(url).hostname or "vitrine"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Vitrine//Live shopping//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:show-{show_id}@{host}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(starts_at)}",
        f"DTEND:{_utc(ends_at)}",
        f"SUMMARY:{_escape(f'{title} — {shop_name}')}",
        f"DESCRIPTION:{_escape((description + chr(10) + chr(10) + url).strip())}",
        f"URL:{url}",
        f"LOCATION:{_escape(url)}",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        f"DESCRIPTION:{_escape(title)}",
        "TRIGGER:-PT10M",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)


def google_calendar_link(
    *, title: str, description: str, starts_at: int, ends_at: int, url: str
) -> str:
    query = urlencode(
        {
            "action": "TEMPLATE",
            "text": title,
            "dates": f"{_utc(starts_at)}/{_utc(ends_at)}",
            "details": f"{description}\n\n{url}".strip(),
            "location": url,
        }
    )
    return f"https://calendar.google.com/calendar/render?{query}"
