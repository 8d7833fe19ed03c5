"""Sending through SMTP, in a thread of its own so the event loop never waits on a mail
server. One connection per batch; the pace (messages per second) is kept in that thread.

Each message comes back as sent, refused for now (a 4xx answer, a dropped or timed-out
connection: try again later) or refused for good (a 5xx answer about that message).
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TypeVar

T = TypeVar("T")
# Builds one email: called in the sending thread, just before it is sent.
Draft = Callable[[], EmailMessage]

SENT, TEMPORARY, PERMANENT = "sent", "temporary", "permanent"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    timeout: float
    per_second: float


@dataclass(frozen=True)
class Outcome:
    status: str
    detail: str = ""


def _code_outcome(code: int, text: bytes | str) -> Outcome:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    detail = f"{code} {detail}"[:300]
    return Outcome(TEMPORARY if 400 <= code < 500 else PERMANENT, detail)


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.port == 465:  # implicit TLS (SMTPS)
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.starttls:
            smtp.starttls(context=context)
    if settings.username:
        smtp.login(settings.username, settings.password)
    return smtp


def send_batch(settings: SmtpSettings, messages: list[Draft]) -> list[Outcome]:
    """Build and send `messages` over one connection (blocking: run it in a thread)."""
    outcomes: list[Outcome] = []
    pause = 1.0 / settings.per_second if settings.per_second > 0 else 0.0
    try:
        smtp = _connect(settings)
    except smtplib.SMTPResponseException as exc:
        failed = _code_outcome(exc.smtp_code, exc.smtp_error)
        # A server refusing the connection or the login for good is still a setting to
        # fix, not a reason to drop the reminders: try again later.
        return [Outcome(TEMPORARY, failed.detail)] * len(messages)
    except (OSError, smtplib.SMTPException) as exc:
        return [Outcome(TEMPORARY, f"cannot reach the mail server: {exc}"[:300])] * len(messages)
    try:
        for index, draft in enumerate(messages):
            if index and pause:
                time.sleep(pause)
            try:
                message = draft()
            except Exception as exc:  # a bug in one email must not stop the others
                outcomes.append(Outcome(PERMANENT, f"could not build the email: {exc!r}"[:300]))
                continue
            try:
                smtp.send_message(message)
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                outcomes.append(_code_outcome(code, text))
            except smtplib.SMTPResponseException as exc:
                outcomes.append(_code_outcome(exc.smtp_code, exc.smtp_error))
                if exc.smtp_code == 421:  # the server is closing the connection
                    break
            except (OSError, smtplib.SMTPException) as exc:
                outcomes.append(Outcome(TEMPORARY, f"connection lost: {exc}"[:300]))
                break
            else:
                outcomes.append(Outcome(SENT))
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
    rest = len(messages) - len(outcomes)
    return outcomes + [Outcome(TEMPORARY, "not tried: the connection ended")] * rest


async def in_daemon_thread(work: Callable[[], T]) -> T:
    """`work()` in a daemon thread of its own: a mail or web server that hangs holds
    that thread (until its timeout), never the event loop nor the process's exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="vitrine-reminders", daemon=True).start()
    return await future
