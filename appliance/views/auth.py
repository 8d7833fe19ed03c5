"""Signing in and out, and the one-time setup page that creates the first admin."""

from __future__ import annotations

from quart import Blueprint, abort, redirect, request, session
from quart.typing import ResponseReturnValue

from appliance import users
from appliance.forms import Form
from appliance.security import password_problem, same_secret
from appliance.services import Services
from appliance.translate import _
from appliance.web import client_address, current_user, render


def safe_next(target: str | None) -> str:
    """Only same-site paths, so a crafted link cannot bounce a user elsewhere."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin"


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
        session.clear()
        session["user_id"] = user.id
        session.permanent = True
        return redirect(safe_next(form.get("next")))

    @bp.post("/logout")
    async def logout() -> ResponseReturnValue:
        session.clear()
        return redirect("/")

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
        session.clear()
        session["user_id"] = user.id
        return redirect("/admin")

    return bp
