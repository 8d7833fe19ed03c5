"""Admin: staff accounts and their roles."""

from __future__ import annotations

from quart import Blueprint, abort, redirect, request, session
from quart.typing import ResponseReturnValue

from appliance.accounts import sessions, users
from appliance.i18n.forms import Form
from appliance.i18n.translate import _
from appliance.services import Services
from appliance.views.admin.auth import password_error
from appliance.views.web import admin_required, current_user, render


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")
    db = svc.db

    async def page(
        values: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> tuple[str, int]:
        return await render(
            "admin/users.html",
            status,
            users=await users.list_users(db),
            roles=users.ROLES,
            form=values,
            errors=errors,
            me=current_user(),
            open_sessions=await sessions.open_counts(db),
        )

    @bp.get("")
    @admin_required
    async def index() -> tuple[str, int]:
        return await page({"role": "host"}, {})

    @bp.post("")
    @admin_required
    async def create() -> ResponseReturnValue:
        data = await request.form
        form = Form(data)
        name = form.text("name", 80)
        email = form.text("email", 254)
        if email and "@" not in email:
            form.error("email", _("Enter an email address."))
        role = form.choice("role", users.ROLES)
        password = form.raw("password")
        if (problem := password_error(password)) is not None:
            form.error("password", problem)
        if not form.errors:
            try:
                await users.create_user(db, email, name, role, password)
            except users.DuplicateEmail:
                form.error("email", _("An account with this email already exists."))
        if form.errors:
            return await page({k: v for k, v in data.items() if k != "password"}, form.errors, 400)
        return redirect("/admin/users?created=1")

    @bp.post("/<int:user_id>")
    @admin_required
    async def update(user_id: int) -> ResponseReturnValue:
        target = await users.get_user(db, user_id)
        if target is None:
            abort(404)
        form = Form(await request.form)
        name = form.text("name", 80)
        role = form.choice("role", users.ROLES)
        active = form.checkbox("active")
        losing_admin = target.is_admin and target.active and (role != "admin" or not active)
        if losing_admin and await users.count_active_admins(db) <= 1:
            form.error("role", _("Keep at least one active admin."))
        new_password = form.raw("password")
        if new_password and (problem := password_error(new_password)) is not None:
            form.error("password", problem)
        if form.errors:
            return await page({}, form.errors, 400)
        await users.update_user(db, user_id, name, role, active)
        if new_password:
            await users.set_password(db, user_id, new_password)
        if new_password or role != target.role or not active:
            # What the user could do changed: every open session of theirs ends (an admin
            # editing their own account keeps the session they are using).
            me = current_user()
            keep = sessions.token_of(session) if me is not None and me.id == user_id else None
            await sessions.end_all(db, user_id, except_token=keep)
        return redirect("/admin/users?saved=1")

    @bp.post("/<int:user_id>/sessions/end")
    @admin_required
    async def sign_out_everywhere(user_id: int) -> ResponseReturnValue:
        target = await users.get_user(db, user_id)
        if target is None:
            abort(404)
        await sessions.end_all(db, user_id)
        me = current_user()
        if me is not None and me.id == user_id:
            session.clear()
            return redirect("/login")
        return redirect("/admin/users?signed_out=1")

    @bp.post("/<int:user_id>/delete")
    @admin_required
    async def delete(user_id: int) -> ResponseReturnValue:
        target = await users.get_user(db, user_id)
        if target is None:
            abort(404)
        me = current_user()
        if me is not None and target.id == me.id:
            return await page({}, {"delete": _("You cannot delete your own account.")}, 400)
        if target.is_admin and await users.count_active_admins(db) <= 1:
            return await page({}, {"delete": _("Keep at least one active admin.")}, 400)
        await users.delete_user(db, user_id)
        return redirect("/admin/users?deleted=1")

    return bp
