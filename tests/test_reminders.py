"""Reminders (issue 16, item 5): "Notify me" with consent and double opt-in, the go-live
email with its .ics and one-click unsubscribe, retries on a temporary SMTP refusal, a mail
server that hangs never delaying going live, and the signed notify webhook.

Every email goes through a real SMTP server (aiosmtpd) on a free port, every webhook
delivery to a real HTTP server; the app is the real one on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiosmtpd.controller import Controller
from quart import Quart

from appliance.app import create_app
from appliance.catalog import shows
from appliance.config import load_config
from appliance.i18n.forms import local_datetime_value
from appliance.kpis.conversions import get_secret
from appliance.kpis.engine import compute
from appliance.kpis.events import show_events
from appliance.kpis.reports import live_window
from appliance.reminders import signups
from appliance.reminders.service import Reminders
from appliance.services import Services
from tests.conftest import csrf_of, free_port, sign_in

FROM = "shows@shop.example"
LINK_RE = re.compile(r"https?://\S+")


class Sink:
    """A real SMTP server keeping what it receives; `refuse` first answers for DATA."""

    def __init__(self, refuse: list[str] | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse = list(refuse or [])
        self.attempts = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        if self.refuse:
            return self.refuse.pop(0)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 OK"

    async def wait(self, count: int, within: float = 20.0) -> list[EmailMessage]:
        deadline = time.monotonic() + within
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} emails, wanted {count}"
            await asyncio.sleep(0.02)
        return self.messages


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


def settings(tmp_path: Path, port: int, **more: str) -> dict[str, str]:
    return {
        "storage.data_dir": str(tmp_path / "data"),
        "email.smtp_host": "127.0.0.1",
        "email.smtp_port": str(port),
        "email.from": FROM,
        "email.starttls": "false",
        "email.timeout_seconds": "2",
        "email.retry_seconds": "0.2",
        "email.per_second": "50",
        **more,
    }


@asynccontextmanager
async def running_app(overrides: dict[str, str]) -> AsyncIterator[Quart]:
    app = create_app(load_config(environ={}, overrides={"media.workers": "0", **overrides}))
    async with app.test_app():
        yield app


@pytest.fixture
async def app_with_mail(tmp_path: Path, sink: tuple[Sink, int]) -> AsyncIterator[Quart]:
    async with running_app(settings(tmp_path, sink[1])) as app:
        yield app


def parts(app: Quart) -> tuple[Services, Reminders]:
    return app.extensions["vitrine"], app.extensions["vitrine.reminders"]


async def new_show(svc: Services, starts_in: int = 86400, title: str = "Soldes d'hiver") -> int:
    data = shows.ShowData(title, "Winter coats", int(time.time()) + starts_in, 60, None)
    return await shows.create_show(svc.db, data)


async def notify_me(app: Quart, show_id: int, lang: str = "en", **form: str) -> tuple[int, str]:
    client = app.test_client()
    token = await csrf_of(client, f"/shows/{show_id}")
    response = await client.post(
        f"/shows/{show_id}/notify",
        form={"csrf_token": token, **form},
        headers={"Accept-Language": lang},
    )
    return response.status_code, await response.get_data(as_text=True)


async def count(svc: Services, sql: str, params: tuple[Any, ...] = ()) -> int:
    return int(await svc.db.fetchval(sql, params) or 0)


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


async def until_db(svc: Services, sql: str, within: float = 20.0) -> None:
    """Wait until the query's first value is true."""
    deadline = time.monotonic() + within
    while not await svc.db.fetchval(sql):
        assert time.monotonic() < deadline, f"never true: {sql}"
        await asyncio.sleep(0.01)


def links(message: EmailMessage) -> list[str]:
    body = message.get_body(("plain",))
    assert body is not None
    return LINK_RE.findall(body.get_content())


async def confirmed_signup(app: Quart, show_id: int, address: str) -> signups.Signup:
    """A sign-up confirmed through its emailed link, as its owner would."""
    svc, _reminders = parts(app)
    status, _page = await notify_me(app, show_id, email=address, consent="yes")
    assert status == 200
    sink: Sink = app.extensions["test.sink"]
    (message,) = [m for m in await sink.wait(1) if m["To"] == address]
    (confirm,) = [u for u in links(message) if "/reminders/confirm/" in u]
    client = app.test_client()
    path = urlsplit(confirm).path
    page = await client.get(path)
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True))
    assert token
    done = await client.post(path, form={"csrf_token": token.group(1)})
    assert done.status_code == 200
    row = await svc.db.fetchone("SELECT id FROM reminder_signups WHERE email = ?", (address,))
    assert row is not None
    signup = await signups.get(svc.db, int(row["id"]))
    assert signup is not None and signup.confirmed_at is not None
    return signup


async def go_live(app: Quart, show_id: int) -> None:
    """What the media plane says when the show's publisher starts sending."""
    app.extensions["vitrine.live"]._on_event(str(show_id), "publishing")


async def wait_status(svc: Services, show_id: int, status: str, within: float = 15.0) -> float:
    started = time.monotonic()
    while (show := await shows.get_show(svc.db, show_id)) is None or show.status != status:
        assert time.monotonic() - started < within, f"show {show_id} never became {status}"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


# -- sign-up: consent, address, double opt-in -------------------------------------------


async def test_notify_me_needs_consent_and_an_address(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, _reminders = parts(app_with_mail)
    show_id = await new_show(svc)
    page = await (await app_with_mail.test_client().get(f"/shows/{show_id}")).get_data(True)
    assert f'action="/shows/{show_id}/notify"' in page and 'name="consent"' in page

    status, body = await notify_me(app_with_mail, show_id, email="ann@example.com")
    assert status == 400 and "Tick the box" in body
    status, body = await notify_me(app_with_mail, show_id, email="not an address", consent="yes")
    assert status == 400 and "Enter an email address" in body
    assert await count(svc, "SELECT COUNT(*) FROM reminder_signups") == 0
    await asyncio.sleep(0.3)
    assert sink[0].messages == []


async def test_emails_speak_the_language_of_the_page(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, _reminders = parts(app_with_mail)
    show_id = await new_show(svc, title="Vente privée")
    status, body = await notify_me(
        app_with_mail, show_id, lang="fr", email="zoe@example.com", consent="yes"
    )
    assert status == 200 and "Consultez votre boîte" in body
    (message,) = await sink[0].wait(1)
    assert message["Subject"] == "Confirmez votre rappel pour Vente privée"
    text = message.get_body(("plain",)).get_content()
    assert "Confirmez avec ce lien" in text


async def test_no_reminders_without_a_mail_server(client: Any, services: Services) -> None:
    show_id = await new_show(services)
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert "/notify" not in page
    token = await csrf_of(client)  # the sign-in page has a form token; the show page none
    response = await client.post(
        f"/shows/{show_id}/notify",
        form={"csrf_token": token, "email": "ann@example.com", "consent": "yes"},
    )
    assert response.status_code == 409
    assert await count(services, "SELECT COUNT(*) FROM reminder_signups") == 0


async def test_double_opt_in_then_go_live_email_with_ics_and_one_click_unsubscribe(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, _reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    show_id = await new_show(svc)

    # Not confirmed: no reminder at all.
    status, body = await notify_me(app_with_mail, show_id, email="bob@example.com", consent="yes")
    assert status == 200 and "Check your inbox" in body
    (confirmation,) = await sink[0].wait(1)
    assert confirmation["To"] == "bob@example.com"
    assert FROM in confirmation["From"]
    assert "List-Unsubscribe" not in confirmation
    assert await count(svc, "SELECT COUNT(*) FROM events WHERE kind = 'reminder_signup'") == 0

    # A forged or altered confirmation link confirms nothing.
    (confirm_url,) = [u for u in links(confirmation) if "/reminders/confirm/" in u]
    forged = urlsplit(confirm_url).path[:-3] + "AAA"
    assert (await app_with_mail.test_client().get(forged)).status_code == 404

    # Asking again for the same show sends no second email right away.
    await notify_me(app_with_mail, show_id, email="bob@example.com", consent="yes")
    sink[0].messages.clear()
    sink[0].messages.append(confirmation)  # what confirmed_signup reads
    signup = await confirmed_signup(app_with_mail, show_id, "bob@example.com")
    assert len(sink[0].messages) == 1
    assert await count(svc, "SELECT COUNT(*) FROM events WHERE kind = 'reminder_signup'") == 1
    sink[0].messages.clear()

    await go_live(app_with_mail, show_id)
    (live,) = await sink[0].wait(1)
    assert live["To"] == "bob@example.com"
    assert "is live now" in live["Subject"]
    show_link = f"/shows/{show_id}?utm_source=reminder"
    assert any(u.endswith(show_link) for u in links(live))
    (ics,) = [p for p in live.iter_attachments() if p.get_content_type() == "text/calendar"]
    calendar = ics.get_content()
    assert calendar.startswith("BEGIN:VCALENDAR") and calendar.rstrip().endswith("END:VCALENDAR")
    assert f"UID:show-{show_id}@" in calendar and "DTSTART:" in calendar
    assert "SUMMARY:Soldes d'hiver" in calendar

    assert live["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = live["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith("http") and "/api/reminders/unsubscribe/" in unsubscribe
    # The mail provider's one click: a POST with no cookie, no session, no form token.
    stranger = app_with_mail.test_client()
    response = await stranger.post(
        urlsplit(unsubscribe).path,
        data="List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert await signups.get(svc.db, signup.id) is None
    assert await count(svc, "SELECT COUNT(*) FROM reminder_signups") == 0
    # Again: still fine, nothing left.
    again = await stranger.post(urlsplit(unsubscribe).path, data="List-Unsubscribe=One-Click")
    assert again.status_code == 200


async def test_unsubscribe_needs_the_signed_token(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    show_id = await new_show(svc)
    signup = await confirmed_signup(app_with_mail, show_id, "cat@example.com")
    token = urlsplit(reminders.unsubscribe_url(signup)).path.rsplit("/", 1)[1]
    client = app_with_mail.test_client()
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "12", "x" * 80):
        response = await client.post(f"/api/reminders/unsubscribe/{bad}")
        assert response.status_code in (200, 404)
        assert await signups.get(svc.db, signup.id) is not None
    # The confirmation token is not an unsubscribe token.
    confirm = urlsplit(reminders.confirm_url(signup)).path.rsplit("/", 1)[1]
    assert (await client.post(f"/api/reminders/unsubscribe/{confirm}")).status_code == 404
    assert await signups.get(svc.db, signup.id) is not None


# -- sending: retries, a hung server ----------------------------------------------------


async def test_a_temporary_smtp_refusal_is_retried(tmp_path: Path) -> None:
    handler = Sink(refuse=["451 4.3.0 Try again later"])
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with running_app(settings(tmp_path, port)) as app:
            svc, _reminders = parts(app)
            show_id = await new_show(svc)
            status, _body = await notify_me(app, show_id, email="dan@example.com", consent="yes")
            assert status == 200
            # Refused for now: kept, with the reason, for a later try.
            await until(lambda: handler.attempts >= 1)
            await until_db(svc, "SELECT COUNT(*) FROM reminder_outbox WHERE attempts = 1")
            error = await svc.db.fetchval("SELECT last_error FROM reminder_outbox")
            assert error.startswith("451")
            (message,) = await handler.wait(1)
            assert message["To"] == "dan@example.com"
            assert handler.attempts == 2  # refused once, then sent
            await until_db(svc, "SELECT COUNT(*) = 0 FROM reminder_outbox")
    finally:
        controller.stop()


async def test_a_permanent_refusal_is_not_retried(tmp_path: Path) -> None:
    handler = Sink(refuse=["550 5.1.1 No such user"])
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        async with running_app(settings(tmp_path, port)) as app:
            svc, reminders = parts(app)
            show_id = await new_show(svc)
            await notify_me(app, show_id, email="eve@example.com", consent="yes")
            deadline = time.monotonic() + 5
            while await count(svc, "SELECT COUNT(*) FROM reminder_outbox"):
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)
            assert handler.attempts == 1 and reminders.emails.dropped == 1
    finally:
        controller.stop()


@pytest.fixture
def hung_server() -> Iterator[int]:
    """Accepts connections and never says a word, like a mail server that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


async def heartbeat(ticks: list[float]) -> None:
    """How late the event loop wakes a 10 ms sleep, again and again."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        ticks.append(time.monotonic() - before)


async def test_a_hung_mail_server_never_delays_going_live(tmp_path: Path, hung_server: int) -> None:
    async with running_app(
        settings(tmp_path, hung_server, **{"email.timeout_seconds": "4"})
    ) as app:
        svc, reminders = parts(app)
        show_id = await new_show(svc)
        # Confirmed sign-ups, made directly: the hung server cannot deliver a confirmation.
        for n in range(20):
            await signups.sign_up(svc.db, show_id, f"v{n}@example.com", "en", "", int(time.time()))
            signup = await svc.db.fetchone(
                "SELECT * FROM reminder_signups WHERE email = ?", (f"v{n}@example.com",)
            )
            assert signup is not None
            await signups.confirm(svc.db, signups.Signup.from_row(signup), time.time())
        # A confirmation email to send: the sender is now stuck on the silent server.
        status, _body = await notify_me(app, show_id, email="stuck@example.com", consent="yes")
        assert status == 200
        await until(lambda: any(t.name == "vitrine-reminders" for t in threading.enumerate()))

        ticks: list[float] = []
        beat = asyncio.create_task(heartbeat(ticks))
        await go_live(app, show_id)
        took = await wait_status(svc, show_id, "live")
        deadline = time.monotonic() + 2
        while await count(svc, "SELECT COUNT(*) FROM reminder_outbox WHERE message = 'live'") < 20:
            assert time.monotonic() < deadline, "the go-live emails were not queued"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # and the loop keeps its pace while the sender hangs
        beat.cancel()
        assert len(ticks) >= 5
        assert took < 1.5, f"going live took {took:.2f} s with a hung mail server"
        assert max(ticks) < 1.0, f"the event loop stalled {max(ticks):.2f} s"
        assert reminders.emails.sent == 0

        # Once the server's silence times out (4 s: far longer than any figure above),
        # the emails wait for a later try.
        deadline = time.monotonic() + 12
        while not await count(svc, "SELECT COUNT(*) FROM reminder_outbox WHERE attempts > 0"):
            assert time.monotonic() < deadline, "the hung attempt never timed out"
            await asyncio.sleep(0.05)
        error = await svc.db.fetchval(
            "SELECT last_error FROM reminder_outbox WHERE attempts > 0 LIMIT 1"
        )
        assert "mail server" in error or "timed out" in error


async def test_emails_wait_in_the_outbox_across_a_restart(
    tmp_path: Path, sink: tuple[Sink, int], hung_server: int
) -> None:
    async with running_app(settings(tmp_path, hung_server)) as app:
        svc, _reminders = parts(app)
        show_id = await new_show(svc)
        await notify_me(app, show_id, email="fay@example.com", consent="yes")
        assert await count(svc, "SELECT COUNT(*) FROM reminder_outbox") == 1
    # The same data directory, now with a mail server that answers.
    async with running_app(settings(tmp_path, sink[1])):
        (message,) = await sink[0].wait(1)
        assert message["To"] == "fay@example.com"


# -- the hour before, KPIs, retention ---------------------------------------------------


async def test_hour_before_email_and_kpis(app_with_mail: Quart, sink: tuple[Sink, int]) -> None:
    svc, reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    show_id = await new_show(svc, starts_in=2 * 3600)
    await confirmed_signup(app_with_mail, show_id, "gus@example.com")
    sink[0].messages.clear()
    await reminders.sweep(time.time())
    await asyncio.sleep(0.3)
    assert sink[0].messages == []  # two hours before: not yet
    await reminders.sweep(time.time() + 3600 + 60)
    (hour,) = await sink[0].wait(1)
    assert "starts in an hour" in hour["Subject"]
    assert hour["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    await reminders.sweep(time.time() + 3600 + 90)  # once only
    await asyncio.sleep(0.3)
    assert len(sink[0].messages) == 1


async def test_a_show_can_go_without_the_hour_before_email(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    quiet = await new_show(svc, starts_in=2 * 3600, title="Quiet")
    usual = await new_show(svc, starts_in=2 * 3600, title="Usual")
    await confirmed_signup(app_with_mail, quiet, "max@example.com")
    sink[0].messages.clear()
    await confirmed_signup(app_with_mail, usual, "max@example.com")
    sink[0].messages.clear()

    # The show's form offers the choice, ticked as email.hour_before says; untick it.
    admin = app_with_mail.test_client()
    token = await sign_in(admin, svc, "admin")
    form = await (await admin.get(f"/admin/shows/{quiet}")).get_data(as_text=True)
    assert re.search(r'name="remind_hour_before" value="1" checked', form)
    show = await shows.get_show(svc.db, quiet)
    assert show is not None
    saved = await admin.post(
        f"/admin/shows/{quiet}",
        form={
            "csrf_token": token,
            "title": show.title,
            "starts_at": local_datetime_value(show.starts_at, (await svc.shop()).timezone),
            "duration_minutes": "60",
            "remind_hour_before_offered": "1",
        },
    )
    assert saved.status_code == 302, await saved.get_data(as_text=True)
    form = await (await admin.get(f"/admin/shows/{quiet}")).get_data(as_text=True)
    assert 'name="remind_hour_before" value="1">' in form  # no longer ticked

    await reminders.sweep(time.time() + 3600 + 60)
    (hour,) = await sink[0].wait(1)
    assert hour["Subject"] == "Usual starts in an hour"
    await asyncio.sleep(0.3)
    assert len(sink[0].messages) == 1


async def test_kpis_count_sign_ups_and_viewers_from_reminders(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, _reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    show_id = await new_show(svc)
    await confirmed_signup(app_with_mail, show_id, "kim@example.com")
    # Asked for but never confirmed: not counted.
    await notify_me(app_with_mail, show_id, email="lou@example.com", consent="yes")
    await sink[0].wait(2)  # Kim's confirmation, then Lou's
    sink[0].messages.clear()
    await go_live(app_with_mail, show_id)
    (live,) = await sink[0].wait(1)
    (link,) = [u for u in links(live) if "utm_source=reminder" in u]

    # Kim follows the email's link; another viewer comes straight to the page.
    for address in (link, f"/shows/{show_id}"):
        viewer = app_with_mail.test_client()
        parts_ = urlsplit(address)
        page = await viewer.get(parts_.path, query_string=dict(parse_qsl(parts_.query)))
        assert page.status_code == 200
        source = "reminder" if "utm_source=reminder" in address else ""
        reply = await viewer.post(
            "/api/events",
            data=json.dumps(
                {"show": show_id, "kind": "join", "props": {"utm_source": source, "referrer": ""}}
            ),
            headers={"Content-Type": "text/plain;charset=UTF-8"},
        )
        assert reply.status_code == 204, await reply.get_data(as_text=True)
    await app_with_mail.extensions["vitrine.events"].flush()

    show = await shows.get_show(svc.db, show_id)
    assert show is not None
    start, _end = live_window(show, time.time())
    figures = compute(await show_events(svc.db, show_id), start, time.time() + 60)
    assert figures["reminder_signups"] == 1
    assert figures["reminder_viewers"] == 1
    assert figures["channels"] == {"direct": 1, "reminder": 1}
    assert figures["viewers"] == 2


async def test_addresses_are_deleted_after_the_show_and_its_retention(
    app_with_mail: Quart, sink: tuple[Sink, int]
) -> None:
    svc, reminders = parts(app_with_mail)
    app_with_mail.extensions["test.sink"] = sink[0]
    show_id = await new_show(svc)
    await confirmed_signup(app_with_mail, show_id, "hal@example.com")
    other = await new_show(svc, title="Other")
    await signups.sign_up(svc.db, other, "ivy@example.com", "en", "", int(time.time()))
    await shows.end_show(svc.db, show_id)
    await reminders.sweep(time.time())
    assert await count(svc, "SELECT COUNT(*) FROM reminder_signups") == 2  # kept 7 days
    await reminders.sweep(time.time() + 7 * 86400 + 60)
    # The ended show's address is gone; the unconfirmed one, two days old, too.
    assert await count(svc, "SELECT COUNT(*) FROM reminder_signups") == 0


# -- the notify webhook -----------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]
    answers: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = self.answers.pop(0) if self.answers else 200
        if status == 200:
            self.received.append(({k: v for k, v in self.headers.items()}, body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[Receiver]]]:
    handler = type("Hook", (Receiver,), {"received": [], "answers": [500]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


async def wait_deliveries(hook: type[Receiver], count_: int) -> list[tuple[dict[str, str], dict]]:
    deadline = time.monotonic() + 20
    while len(hook.received) < count_:
        assert time.monotonic() < deadline, f"{len(hook.received)} deliveries, wanted {count_}"
        await asyncio.sleep(0.02)
    return [(h, json.loads(b)) for h, b in hook.received]


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Vitrine-Signature"])


async def test_webhook_signed_on_scheduled_live_and_ended(
    tmp_path: Path, sink: tuple[Sink, int], receiver: tuple[str, type[Receiver]]
) -> None:
    url, hook = receiver
    more = {"notify.webhook_url": url, "notify.webhook_secret": "s3cret-for-hooks"}
    async with running_app(settings(tmp_path, sink[1], **more)) as app:
        svc, reminders = parts(app)
        show_id = await new_show(svc, title="Blind test")
        await reminders.sweep(time.time())
        # The receiver's first answer is a 500: the delivery is retried.
        ((headers, scheduled),) = await wait_deliveries(hook, 1)
        assert headers["X-Vitrine-Event"] == "show.scheduled"
        assert scheduled["event"] == "show.scheduled"
        assert scheduled["show"]["id"] == show_id and scheduled["show"]["title"] == "Blind test"
        assert scheduled["show"]["url"].endswith(f"/shows/{show_id}")

        await go_live(app, show_id)
        await wait_status(svc, show_id, "live")
        await app.extensions["vitrine.live"].end(show_id)
        deliveries = await wait_deliveries(hook, 3)
        assert [body["event"] for _h, body in deliveries] == [
            "show.scheduled",
            "show.live",
            "show.ended",
        ]
        assert deliveries[2][1]["show"]["status"] == "ended"
        for headers, raw in hook.received:
            assert signature_ok("s3cret-for-hooks", headers, raw)
            assert not signature_ok("s3cret-for-hooks", headers, raw + b" ")
            assert not signature_ok("another secret", headers, raw)
        # The sweep does not announce a show twice.
        await reminders.sweep(time.time())
        await asyncio.sleep(0.3)
        assert len(hook.received) == 3


async def test_webhook_without_its_own_secret_signs_with_the_conversion_secret(
    tmp_path: Path, sink: tuple[Sink, int], receiver: tuple[str, type[Receiver]]
) -> None:
    url, hook = receiver
    hook.answers.clear()
    async with running_app(settings(tmp_path, sink[1], **{"notify.webhook_url": url})) as app:
        svc, reminders = parts(app)
        await new_show(svc)
        await reminders.sweep(time.time())
        ((headers, _body),) = await wait_deliveries(hook, 1)
        secret = await get_secret(svc.db)
        assert secret and signature_ok(secret, headers, hook.received[0][1])


# -- end to end: the real server, a real publisher, a silent mail server ----------------


def _http(method: str, url: str, **kw: Any) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    opener = kw.pop("opener", None) or urllib.request.build_opener()
    request = urllib.request.Request(url, method=method, **kw)
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.server
@pytest.mark.usefixtures("loopback_candidates")
async def test_a_show_goes_live_on_the_real_server_while_its_mail_server_hangs(
    tmp_path: Path, hung_server: int
) -> None:
    import http.cookiejar
    import sqlite3
    import urllib.parse
    import urllib.request

    from tests.conftest import launch, stop
    from tests.media_helpers import CounterVideoTrack, answer, make_publisher

    server = launch(
        tmp_path / "data",
        tmp_path / "server.log",
        {
            "VITRINE_EMAIL_SMTP_HOST": "127.0.0.1",
            "VITRINE_EMAIL_SMTP_PORT": str(hung_server),
            "VITRINE_EMAIL_FROM": FROM,
            "VITRINE_EMAIL_STARTTLS": "false",
            "VITRINE_EMAIL_TIMEOUT_SECONDS": "30",
        },
    )
    publisher = None
    try:
        created = json.loads(
            server.cli("shows", "create", "--title", "Hung mail", "--starts-at", "2030-01-01T10:00")
        )
        show_id, key = created["id"], created["stream_key"]
        database = server.data_dir / "vitrine.sqlite3"
        with sqlite3.connect(database, timeout=30) as conn:
            conn.executemany(
                "INSERT INTO reminder_signups (show_id, email, lang, nonce, created_at, "
                "confirmed_at) VALUES (?, ?, 'en', ?, ?, ?)",
                [
                    (show_id, f"v{n}@example.com", f"n{n}", time.time(), time.time())
                    for n in range(50)
                ],
            )
        # A viewer signs up on the page: the sender takes the confirmation email to the
        # silent server and hangs there for 30 s.
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        status, page = await asyncio.to_thread(
            _http, "GET", f"{server.url}/shows/{show_id}", opener=opener
        )
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert status == 200 and token
        form = urllib.parse.urlencode(
            {"csrf_token": token.group(1), "email": "ann@example.com", "consent": "yes"}
        ).encode()
        status, _page = await asyncio.to_thread(
            _http, "POST", f"{server.url}/shows/{show_id}/notify", data=form, opener=opener
        )
        assert status == 200
        await asyncio.sleep(1.0)

        started = time.monotonic()
        publisher, offer = await make_publisher(CounterVideoTrack())
        status, sdp = await asyncio.to_thread(
            _http,
            "POST",
            f"{server.url}/whip/{show_id}",
            data=offer.encode(),
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {key}"},
        )
        assert status == 201, sdp
        await answer(publisher, sdp)

        def show_status() -> str:
            with sqlite3.connect(database, timeout=30) as conn:
                return str(
                    conn.execute("SELECT status FROM shows WHERE id = ?", (show_id,)).fetchone()[0]
                )

        while await asyncio.to_thread(show_status) != "live":
            assert time.monotonic() - started < 10, "the show did not go live"
            await asyncio.sleep(0.05)
        took = time.monotonic() - started

        def queued() -> int:
            with sqlite3.connect(database, timeout=30) as conn:
                return int(
                    conn.execute(
                        "SELECT COUNT(*) FROM reminder_outbox WHERE message = 'live'"
                    ).fetchone()[0]
                )

        while await asyncio.to_thread(queued) < 50:
            assert time.monotonic() - started < 10, "the go-live emails were not queued"
            await asyncio.sleep(0.05)
        # Live within a few seconds (ICE on loopback), long before the mail server's
        # 30 s timeout: nothing on the way to going live waited for it.
        assert took < 8, f"going live took {took:.1f} s"
        status, _body = await asyncio.to_thread(_http, "GET", f"{server.url}/healthz")
        assert status == 200
        # Stopping does not wait for the hung sender either.
        await publisher.close()
        publisher = None
        began = time.monotonic()
        await asyncio.to_thread(stop, server)
        assert server.process.returncode == 0 and time.monotonic() - began < 10
    finally:
        if publisher is not None:
            await publisher.close()
        if server.process.poll() is None:
            stop(server)


async def test_a_show_saved_on_the_admin_form_reaches_the_webhook_at_once(
    tmp_path: Path,
    sink: tuple[Sink, int],
    receiver: tuple[str, type[Receiver]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not at the next sweep: with the sweep set to an hour, only the save can deliver it."""
    from appliance.reminders import service

    url, hook = receiver
    hook.answers.clear()
    monkeypatch.setattr(service, "SWEEP_SECONDS", 3600.0)
    sweeps: list[float] = []
    original = Reminders.sweep

    async def counted(self: Reminders, now: float) -> None:
        sweeps.append(now)
        await original(self, now)

    monkeypatch.setattr(Reminders, "sweep", counted)
    async with running_app(settings(tmp_path, sink[1], **{"notify.webhook_url": url})) as app:
        svc, _reminders = parts(app)
        await until(lambda: len(sweeps) == 1)  # the pass at start, before the show exists
        client = app.test_client()
        token = await sign_in(client, svc)
        form = {
            "csrf_token": token,
            "title": "Blind test du vendredi",
            "starts_at": "2031-05-02T19:00",
            "duration_minutes": "30",
        }
        response = await client.post("/admin/shows/new", form=form)
        assert response.status_code == 302
        show_id = int(response.headers["Location"].split("/")[-1].split("?")[0])
        ((headers, body),) = await wait_deliveries(hook, 1)
        assert headers["X-Vitrine-Event"] == "show.scheduled"
        assert body["show"]["id"] == show_id and body["show"]["title"] == "Blind test du vendredi"
        assert len(sweeps) == 1  # the sweep had no part in it

        # Saving again without a new time announces nothing; a new time is announced again.
        form["title"] = "Blind test"
        assert (await client.post(f"/admin/shows/{show_id}", form=form)).status_code == 302
        form["starts_at"] = "2031-05-03T19:00"
        assert (await client.post(f"/admin/shows/{show_id}", form=form)).status_code == 302
        deliveries = await wait_deliveries(hook, 2)
        assert deliveries[1][1]["show"]["title"] == "Blind test"
        assert deliveries[1][1]["show"]["starts_at"] > body["show"]["starts_at"]
        await asyncio.sleep(0.3)
        assert len(hook.received) == 2 and len(sweeps) == 1
