"""Admin: the show schedule, each show's line-up and stream key, and the dashboard."""

from __future__ import annotations

import asyncio

from quart import Blueprint, abort, current_app, g, redirect, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access, users
from appliance.catalog import products, shows
from appliance.i18n.forms import Form, local_datetime_value
from appliance.i18n.translate import _
from appliance.live.bridge import LiveShows
from appliance.metrics.status import operator_status
from appliance.reminders import show_settings
from appliance.reminders.service import Reminders
from appliance.services import Services
from appliance.views.admin.image_field import ImageField
from appliance.views.web import current_user, render, staff_required

editors = staff_required("admin", "host")
MAX_LINEUP = 100


def read_lineup(form: Form, known_ids: set[int]) -> list[int]:
    """Products whose position field holds a number, in that order."""
    picked: list[tuple[int, int]] = []
    for key in form.data:
        if not key.startswith("pos_"):
            continue
        try:
            product_id = int(key[4:])
        except ValueError:
            continue
        text = form.raw(key).strip()
        if not text or product_id not in known_ids:
            continue
        try:
            position = int(text)
        except ValueError:
            form.error("lineup", _("Positions in the line-up must be whole numbers."))
            continue
        picked.append((position, product_id))
    if len(picked) > MAX_LINEUP:
        form.error("lineup", _("A line-up holds at most %(n)s products.", n=MAX_LINEUP))
    return [pid for _pos, pid in sorted(picked)]


def read_moderators(form: Form, values: list[str], known_ids: set[int]) -> list[int]:
    """The moderators ticked in the form (`moderators` checkboxes), among `known_ids`."""
    picked: list[int] = []
    for text in values:
        try:
            user_id = int(text)
        except ValueError:
            user_id = 0
        if user_id not in known_ids:
            form.error("moderators", _("Choose one of the offered values."))
            continue
        picked.append(user_id)
    return picked


def _replay_flash() -> str | None:
    """What the last replay change did, for the panel it came back to."""
    if request.args.get("replay_trimmed"):
        return _("The replay was trimmed.")
    if request.args.get("replay_deleted"):
        return _("The replay was deleted.")
    if request.args.get("replay_saved"):
        return _("Saved.")
    return None


async def confirmed() -> bool:
    """Whether a destructive form came with its "Yes, I am sure" box ticked; without it
    (no JavaScript, or a tap that skipped the box) the view shows a confirmation page."""
    return (await request.form).get("confirm") == "yes"


def blueprint(svc: Services, live: LiveShows) -> Blueprint:
    bp = Blueprint("admin_shows", __name__)
    db = svc.db

    async def can_assign(show: shows.Show | None) -> bool:
        user = current_user()
        return await access.may(db, user, "assign", show) if show else access.may_assign_new(user)

    async def editor(
        show: shows.Show | None,
        values: dict[str, str],
        errors: dict[str, str],
        status: int,
        assigned: list[int] | None = None,
    ) -> tuple[str, int]:
        everyone = await users.list_users(db)
        can = await access.allowed(db, current_user(), show) if show else frozenset()
        if show is None and await can_assign(None):
            can = can | {"assign"}
        if assigned is None:
            assigned = await shows.moderators_of(db, show.id) if show else []
        return await render(
            "admin/show_form.html",
            status,
            show=show,
            form=values,
            errors=errors,
            can=can,
            hosts=[u for u in everyone if u.role in ("admin", "host") and u.active],
            host_name=next((u.name for u in everyone if show and u.id == show.host_id), None),
            moderators=[u for u in everyone if u.role == "moderator" and u.active],
            assigned=set(assigned),
            catalogue=await products.list_products(db),
            products=await shows.lineup(db, show.id) if show else [],
            # The key and the WHIP address reach only those who may publish the show.
            whip_url=f"{svc.config.base_url}/whip/{show.id}" if show and "publish" in can else "",
            replay=await svc.replays.get(show.id) if show else None,
            auto_publish=await svc.replays.auto_publish(show.id) if show else True,
            recording_problem=live.recording_problem(show.id) if show else None,
            replay_flash=_replay_flash(),
        )

    def values_of(show: shows.Show, lineup: list[products.Product]) -> dict[str, str]:
        values = {
            "title": show.title,
            "description": show.description,
            "starts_at": local_datetime_value(show.starts_at, g.shop.timezone),
            "duration_minutes": str(show.duration_minutes),
            "host_id": str(show.host_id or ""),
        }
        values.update({f"pos_{p.id}": str(i + 1) for i, p in enumerate(lineup)})
        return values

    async def mine(status: str | None = None) -> list[shows.Show]:
        """The shows the signed-in user may see: an admin all, others only theirs."""
        return await access.visible(db, current_user(), await shows.list_shows(db, status))

    @bp.get("/admin")
    @staff_required()
    async def dashboard() -> tuple[str, int]:
        live_now = await mine("live")
        user = current_user()
        operator = None
        if user is not None and user.role == "admin":  # what an operator checks first
            operator = await operator_status(
                svc.config,
                db,
                live,
                current_app.extensions["vitrine.metrics"],
                [s.id for s in live_now],
                request.scheme == "https",
            )
        return await render(
            "admin/dashboard.html",
            live=live_now,
            upcoming=(await mine("scheduled"))[:5],
            product_count=len(await products.list_products(db)),
            operator=operator,
            titles={s.id: s.title for s in live_now},
        )

    @bp.get("/admin/shows")
    @staff_required()
    async def index() -> tuple[str, int]:
        return await render("admin/shows.html", shows=await mine())

    @bp.get("/admin/shows/new")
    @editors
    async def new() -> tuple[str, int]:
        hour_before = "1" if svc.config.email.hour_before else ""
        return await editor(
            None, {"duration_minutes": "60", "remind_hour_before": hour_before}, {}, 200
        )

    @bp.get("/admin/shows/<int:show_id>")
    @editors
    async def edit(show_id: int) -> tuple[str, int]:
        show = await access.show_for(db, current_user(), show_id, "edit")
        values = values_of(show, await shows.lineup(db, show_id))
        default = svc.config.email.hour_before
        hour_before = await show_settings.hour_before(db, show_id, default)
        values["remind_hour_before"] = "1" if hour_before else ""
        return await editor(show, values, {}, 200)

    @bp.post("/admin/shows/new")
    @bp.post("/admin/shows/<int:show_id>")
    @editors
    async def save(show_id: int | None = None) -> ResponseReturnValue:
        user = current_user()
        assert user is not None  # staff_required
        show = await access.show_for(db, user, show_id, "edit") if show_id is not None else None
        data = await request.form
        form = Form(data)
        everyone = await users.list_users(db)
        moderator_ids: list[int] | None = None
        if await can_assign(show):
            host_ids = {u.id for u in everyone if u.role in ("admin", "host")}
            host_id = form.integer("host_id", 1, 2**31, required=False)
            if host_id is not None and host_id not in host_ids:
                form.error("host_id", _("Choose one of the offered values."))
            moderator_ids = read_moderators(
                form, data.getlist("moderators"), {u.id for u in everyone if u.role == "moderator"}
            )
        else:
            # Only `assign` changes the host: a host's own show keeps its host, and a show
            # a host schedules is theirs.
            host_id = show.host_id if show is not None else user.id
        item = shows.ShowData(
            title=form.text("title", 120),
            description=form.text("description", 4000, required=False, multiline=True),
            starts_at=form.when("starts_at", g.shop.timezone),
            duration_minutes=form.integer("duration_minutes", 5, 24 * 60) or 60,
            host_id=host_id,
        )
        known = {p.id for p in await products.list_products(db)}
        lineup = read_lineup(form, known)
        cover_field = await ImageField.read(
            svc.uploads, form, "cover", show.cover if show else None
        )
        if form.errors:
            return await editor(show, dict(data), form.errors, 400, moderator_ids)
        async with cover_field.saving() as cover:
            if show is None:
                show_id = await shows.create_show(db, item, cover, lineup)
            else:
                await shows.update_show(db, show.id, item, cover, lineup)
        if moderator_ids is not None and show_id is not None:
            await shows.set_moderators(db, show_id, moderator_ids)
        if data.get("remind_hour_before_offered") and show_id is not None:
            wanted = data.get("remind_hour_before") == "1"
            await show_settings.set_hour_before(db, show_id, wanted)
        reminders = current_app.extensions.get("vitrine.reminders")
        if isinstance(reminders, Reminders) and show_id is not None:
            reminders.schedule_changed(show_id)  # the webhook hears of it now, not in 30 s
        return redirect(f"/admin/shows/{show_id}?saved=1")

    @bp.post("/admin/shows/<int:show_id>/delete")
    @staff_required("admin")
    async def delete(show_id: int) -> ResponseReturnValue:
        show = await access.show_for(db, current_user(), show_id, "delete")
        if show.status == "live":
            abort(409)
        if not await confirmed():
            return await render(
                "admin/confirm.html",
                title=_("Delete this show"),
                explanation=_("The show, its recording and its replay are deleted for good."),
                action=f"/admin/shows/{show_id}/delete",
                check_label=_("Yes, delete this show, its recording and its replay"),
                button=_("Delete this show"),
                back=f"/admin/shows/{show_id}",
            )
        await shows.delete_show(db, show_id)
        await svc.uploads.remove(show.cover)
        # Its recording and replay files go with it (the rows went with the show).
        await asyncio.to_thread(svc.replays.remove_files, show_id)
        return redirect("/admin/shows?deleted=1")

    @bp.post("/admin/shows/<int:show_id>/rotate-key")
    @editors
    async def rotate_key(show_id: int) -> ResponseReturnValue:
        await access.show_for(db, current_user(), show_id, "publish")
        await shows.rotate_stream_key(db, show_id)
        return redirect(f"/admin/shows/{show_id}?rotated=1")

    @bp.post("/admin/shows/<int:show_id>/end")
    @editors
    async def end(show_id: int) -> ResponseReturnValue:
        show = await access.show_for(db, current_user(), show_id, "publish")
        if show.status == "ended":
            abort(409)
        if not await confirmed():
            return await render(
                "admin/confirm.html",
                title=_("Mark the show as ended"),
                explanation=_("End this show for everyone? It cannot go live again."),
                action=f"/admin/shows/{show_id}/end",
                check_label=_("Yes, end this show: it cannot go live again"),
                button=_("Mark the show as ended"),
                back=f"/admin/shows/{show_id}",
            )
        await live.end(show_id)
        return redirect(f"/admin/shows/{show_id}?ended=1")

    return bp
