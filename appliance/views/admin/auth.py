"""Signing in and out, changing one's password, and the one-time setup page."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

from quart import Blueprint, abort, redirect, request, session
from quart.typing import ResponseReturnValue

from appliance.accounts import sessions, users
from appliance.accounts.security import password_problem, same_secret
from appliance.accounts.users import User
from appliance.i18n.forms import Form
from appliance.i18n.translate import _
from appliance.services import Services
from appliance.views.web import client_address, current_user, render, staff_required

HOME = "/admin"


def _unprintable(text: str, space: bool = False) -> bool:
    """Whitespace (but a plain space when `space`) or control characters, which browsers
    strip from URLs or split them on."""
    return any(
        (ch.isspace() and not (space and ch == " ")) or unicodedata.category(ch).startswith("C")
        for ch in text
    )


def safe_next(target: str | None) -> str:
    """`target` when it is a path on this site, else the admin home.

    A crafted link must not bounce a user elsewhere after sign-in: browsers drop tabs
    and newlines (`/%09/evil.example` becomes `//evil.example`, another site) and read a
    backslash as a slash, so anything but a plain absolute path is refused, decoded or
    not. The path stays percent-encoded ASCII, as a Location header must be.
    """
    if not target or len(target) > 2000 or not target.isascii():
        return HOME
    decoded = unquote(target)  # `%20` is a space in a query; `%09`, `%0a` never pass
    for text, space in ((target, False), (decoded, True)):
        if _unprintable(text, space) or "\\" in text:
            return HOME
        if not text.startswith("/") or text.startswith("//"):
            return HOME
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            return HOME
    return target


def password_error(password: str) -> str | None:
    problem = password_problem(password)
    if problem == "too_short":
        return _("Use at least 10 characters.")
    if problem == "too_long":
        return _("Keep this under %(n)s characters.", n=256)
    return None


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("auth", __name__)
    db = svc.db

    @bp.get("/login")
    async def login_form() -> ResponseReturnValue:
        if current_user() is not None:
            return redirect(safe_next(request.args.get("next")))
        return await render("auth/login.html", next=request.args.get("next", ""), form={})

    @bp.post("/login")
    async def login() -> ResponseReturnValue:
        form = await request.form
        email = form.get("email", "").strip()[:254]
        password = form.get("password", "")[:256]
        address = client_address(svc.config.server)
        key = f"{address}|{email.lower()}"
        limiter = svc.login_limiter
        # One account from one address gets `limit` tries; one address, four times that.
        if limiter.blocked(key) or limiter.blocked(address, limiter.limit * 4):
            return await render(
                "auth/login.html",
                429,
                next=form.get("next", ""),
                form={"email": email},
                error=_("Too many failed attempts. Wait a few minutes and try again."),
            )
        user = await users.authenticate(db, email, password) if email and password else None
        if user is None:
            limiter.hit(key)
            limiter.hit(address)
            return await render(
                "auth/login.html",
                400,
                next=form.get("next", ""),
                form={"email": email},
                error=_("Wrong email or password."),
            )
        limiter.reset(key)
        await begin_session(user, address)
        return redirect(safe_next(form.get("next")))

    async def begin_session(user: User, address: str) -> None:
        """A new server-side session in a fresh cookie (and so a fresh CSRF token)."""
        token = await sessions.start(db, user, request.headers.get("User-Agent", ""), address)
        session.clear()
        session[sessions.COOKIE_KEY] = token
        session.permanent = True

    @bp.post("/logout")
    async def logout() -> ResponseReturnValue:
        await sessions.end(db, sessions.token_of(session))
        session.clear()
        return redirect("/")

    async def password_page(
        status: int = 200, errors: dict[str, str] | None = None, saved: bool = False
    ) -> tuple[str, int]:
        return await render("auth/password.html", status, errors=errors or {}, saved=saved)

    @bp.get("/account/password")
    @staff_required()
    async def password_form() -> tuple[str, int]:
        return await password_page(saved=request.args.get("saved") == "1")

    @bp.post("/account/password")
    @staff_required()
    async def change_password() -> ResponseReturnValue:
        me = current_user()
        assert me is not None  # staff_required
        form = Form(await request.form)
        current = form.raw("current")[:256]
        new = form.raw("password")
        limiter = svc.login_limiter
        key = f"password|{me.id}"
        if limiter.blocked(key):
            form.error("current", _("Too many failed attempts. Wait a few minutes and try again."))
            return await password_page(429, form.errors)
        if not await users.check_password(db, me.id, current):
            limiter.hit(key)
            form.error("current", _("This is not your current password."))
        if (problem := password_error(new)) is not None:
            form.error("password", problem)
        elif new != form.raw("confirm"):
            form.error("confirm", _("The two new passwords differ."))
        if form.errors:
            return await password_page(400, form.errors)
        limiter.reset(key)
        await users.set_password(db, me.id, new)
        # Whoever else holds one of this user's sessions loses it; this browser keeps its own.
        await sessions.end_all(db, me.id, except_token=sessions.token_of(session))
        return redirect("/account/password?saved=1")

    async def setup_guard(token: str) -> None:
        if await users.admin_exists(db):
            abort(404)
        if not same_secret(token, svc.setup_token):
            abort(403)

    @bp.get("/setup")
    async def setup_form() -> tuple[str, int]:
        await setup_guard(request.args.get("token", ""))
        return await render(
            "auth/setup.html", token=request.args.get("token", ""), form={}, errors={}
        )

    @bp.post("/setup")
    async def setup() -> ResponseReturnValue:
        data = await request.form
        await setup_guard(data.get("token", ""))
        form = Form(data)
        name = form.text("name", 80)
        email = form.text("email", 254)
        if email and "@" not in email:
            form.error("email", _("Enter an email address."))
        password = form.raw("password")
        if (problem := password_error(password)) is not None:
            form.error("password", problem)
        if form.errors:
            return await render(
                "auth/setup.html", 400, token=data.get("token", ""), form=data, errors=form.errors
            )
        user = await users.create_user(db, email, name, "admin", password)
        await begin_session(user, client_address(svc.config.server))
        return redirect("/admin")

    return bp
