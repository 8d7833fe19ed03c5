"""Reminder pages: "Notify me" on an upcoming show, the confirmation link (double
opt-in) and the one-click unsubscribe (RFC 8058) the emails carry (docs/reminders.md).

The unsubscribe address lives under /api/: a mail provider POSTs
`List-Unsubscribe=One-Click` to it with no session and no form token, and the signed token
in the path is all it needs. Confirming asks for a press of a button (a form with its
token): link checkers that open every address in an email do not sign anyone up.
"""

from __future__ import annotations

from quart import Blueprint, g, request
from quart.typing import ResponseReturnValue

from appliance.accounts.security import SlidingWindowLimiter
from appliance.i18n.translate import _
from appliance.reminders import signups
from appliance.reminders.service import Reminders
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, client_address, render, show_or_404, valid_viewer

# Sign-ups one client address may make in an hour: enough for a family, not a mail bomb.
SIGNUPS_PER_HOUR = 10


def blueprint(svc: Services, reminders: Reminders) -> Blueprint:
    bp = Blueprint("reminders", __name__)
    limiter = SlidingWindowLimiter(SIGNUPS_PER_HOUR, 3600.0)

    @bp.app_context_processor
    async def offer_reminders() -> dict[str, bool]:
        return {"reminders_enabled": reminders.enabled}

    async def page(status: int = 200, **context: object) -> tuple[str, int]:
        return await render("public/reminder.html", status, **context)

    @bp.post("/shows/<int:show_id>/notify")
    async def notify_me(show_id: int) -> ResponseReturnValue:
        show = await show_or_404(svc.db, show_id)
        if not reminders.enabled or show.status != "scheduled":
            return await page(
                409, show=show, state="closed", title=_("Reminders are not available")
            )
        form = await request.form
        email = form.get("email", "")[:400]
        errors: dict[str, str] = {}
        try:
            signups.clean_email(email)
        except signups.BadAddress:
            errors["email"] = _("Enter an email address, like name@example.com.")
        if form.get("consent") != "yes":
            errors["consent"] = _("Tick the box to agree to receive these emails.")
        if errors:
            return await page(
                400,
                show=show,
                state="form",
                email=email.strip(),
                errors=errors,
                title=_("Get a reminder"),
            )
        address = client_address(svc.config.server)
        if limiter.blocked(address):
            return await page(
                429,
                show=show,
                state="form",
                email=email.strip(),
                errors={"email": _("Too many sign-ups from this connection. Try again later.")},
                title=_("Get a reminder"),
            )
        limiter.hit(address)
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE)) or ""
        await reminders.sign_up(show, email, g.lang, viewer)
        # The same answer whether the address was new, pending or confirmed already:
        # the page tells nobody who else asked for reminders.
        return await page(show=show, state="sent", title=_("Check your inbox"))

    @bp.get("/reminders/confirm/<token>")
    async def confirm_page(token: str) -> ResponseReturnValue:
        signup = await reminders.by_token(signups.CONFIRM, token[:64])
        if signup is None:
            return await page(404, state="invalid", title=_("This link is no longer valid"))
        show = await show_or_404(svc.db, signup.show_id)
        if signup.confirmed_at is not None:
            return await page(show=show, state="confirmed", title=_("You will get a reminder"))
        return await page(show=show, state="confirm", token=token, title=_("Confirm your reminder"))

    @bp.post("/reminders/confirm/<token>")
    async def confirm(token: str) -> ResponseReturnValue:
        signup = await reminders.by_token(signups.CONFIRM, token[:64])
        if signup is None:
            return await page(404, state="invalid", title=_("This link is no longer valid"))
        show = await show_or_404(svc.db, signup.show_id)
        await reminders.confirm(signup)
        return await page(show=show, state="confirmed", title=_("You will get a reminder"))

    @bp.get("/api/reminders/unsubscribe/<token>")
    async def unsubscribe_page(token: str) -> ResponseReturnValue:
        signup = await reminders.by_token(signups.UNSUBSCRIBE, token[:64])
        if signup is None:
            return await page(state="gone", title=_("You will get no more reminders"))
        show = await show_or_404(svc.db, signup.show_id)
        return await page(show=show, state="unsubscribe", token=token, title=_("Stop reminders"))

    @bp.post("/api/reminders/unsubscribe/<token>")
    async def unsubscribe(token: str) -> ResponseReturnValue:
        # One click from the mail provider (RFC 8058) or the page's button: no session,
        # no form token, the signed token is the proof. Done already is done.
        if signups.token_id(token) is None:
            return await page(404, state="invalid", title=_("This link is no longer valid"))
        signup = await reminders.by_token(signups.UNSUBSCRIBE, token)
        if signup is None:
            gone = await signups.get(svc.db, signups.token_id(token) or 0) is None
            if not gone:  # a real sign-up, a forged signature
                return await page(404, state="invalid", title=_("This link is no longer valid"))
        else:
            await reminders.unsubscribe(signup)
        return await page(state="gone", title=_("You will get no more reminders"))

    return bp
