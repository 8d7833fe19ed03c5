"""The emails themselves: the confirmation, the hour-before and the go-live reminder.

Plain text, in the language the viewer used to sign up. The two reminders carry the
show's link (marked `utm_source=reminder`, the channel the KPIs count), its .ics file, and
a one-click unsubscribe (RFC 8058): a `List-Unsubscribe` address that takes a POST with no
session, and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from typing import Any
from urllib.parse import urlsplit

from appliance.i18n.translate import N_

CONFIRM_SUBJECT = N_("Confirm your reminder for %(title)s")
CONFIRM_BODY = N_(
    "You asked %(shop)s to tell you by email when %(title)s goes live (%(when)s).\n\n"
    "Confirm with this link:\n%(link)s\n\n"
    "If you did not ask for this, ignore this email: the address will be deleted in "
    "two days."
)
HOUR_SUBJECT = N_("%(title)s starts in an hour")
HOUR_BODY = N_(
    "%(title)s, the live show of %(shop)s, starts in an hour (%(when)s).\n\n"
    "Watch it here:\n%(link)s\n\n"
    "The attached file adds it to your calendar."
)
LIVE_SUBJECT = N_("%(title)s is live now")
LIVE_BODY = N_(
    "%(title)s, the live show of %(shop)s, has just started.\n\nWatch it here:\n%(link)s"
)
FOOTER = N_(
    "You get this email because you asked for a reminder of this show. Stop these "
    "reminders:\n%(link)s"
)

KINDS = ("confirm", "hour", "live")


@dataclass(frozen=True)
class Content:
    """What every email of a show needs, already worked out."""

    sender: str
    shop: str
    title: str
    when: str  # the start time, in the shop's time zone and the viewer's language
    show_url: str  # the show page, marked as coming from a reminder
    ics: str  # the show's calendar file


def build(
    kind: str,
    to: str,
    content: Content,
    gettext: Any,
    *,
    confirm_url: str = "",
    unsubscribe_url: str = "",
    now: float,
) -> EmailMessage:
    """The email of `kind` to `to`; `gettext` translates into the viewer's language."""
    names = {"shop": content.shop, "title": content.title, "when": content.when}
    msg = EmailMessage()
    msg["From"] = formataddr((content.shop, content.sender))
    msg["To"] = to
    msg["Date"] = format_datetime(datetime.fromtimestamp(now, UTC))
    msg["Message-ID"] = make_msgid(domain=_domain(content.sender))
    msg["Auto-Submitted"] = "auto-generated"
    if kind == "confirm":
        msg["Subject"] = gettext(CONFIRM_SUBJECT) % names
        msg.set_content(gettext(CONFIRM_BODY) % {**names, "link": confirm_url} + "\n")
        return msg
    subject, body = (HOUR_SUBJECT, HOUR_BODY) if kind == "hour" else (LIVE_SUBJECT, LIVE_BODY)
    msg["Subject"] = gettext(subject) % names
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = gettext(body) % {**names, "link": content.show_url}
    footer = gettext(FOOTER) % {"link": unsubscribe_url}
    msg.set_content(f"{text}\n\n-- \n{footer}\n")
    msg.add_attachment(
        content.ics, subtype="calendar", filename="show.ics", params={"method": "PUBLISH"}
    )
    return msg


def _domain(address: str) -> str:
    host = address.rpartition("@")[2] or urlsplit(address).hostname or ""
    return host or "vitrine.invalid"
