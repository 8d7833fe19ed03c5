"""Admin: a show's replay: publish or unpublish it, rename it, trim its start and end,
delete it, and whether it publishes itself when the show ends. The panel is part of the
admin show page (admin/_replay.html); every change comes back to it."""

from __future__ import annotations

import re

from quart import Blueprint, abort, redirect, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.i18n.forms import clean_text
from appliance.i18n.translate import _
from appliance.replays.store import ReplayError
from appliance.services import Services
from appliance.views.web import current_user, render, staff_required

editors = staff_required("admin", "host")
MAX_TITLE = 120
_TIME_RE = re.compile(r"^(?:(\d{1,3}):)??(?:(\d{1,2}):)?(\d{1,5}(?:\.\d{1,3})?)$")


def parse_time(text: str) -> float | None:
    """Seconds from "90", "1:30", "1:02:03" or "1:30.5"; None when it is none of those."""
    match = _TIME_RE.match(text.strip())
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    if (hours or minutes) and float(seconds) >= 60:
        return None
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("admin_replays", __name__)
    db = svc.db
    replays = svc.replays

    def back(show_id: int, flag: str) -> ResponseReturnValue:
        return redirect(f"/admin/shows/{show_id}?{flag}=1#replay")

    async def refused(show_id: int, message: str) -> ResponseReturnValue:
        return await render(
            "error.html",
            400,
            title=_("The replay was not changed"),
            message=message,
            back=f"/admin/shows/{show_id}#replay",
        )

    async def ready_replay(show_id: int) -> None:
        await access.show_for(db, current_user(), show_id, "replay")
        replay = await replays.get(show_id)
        if replay is None:
            abort(404)
        if replay.status != "ready":
            abort(409)

    @bp.post("/admin/shows/<int:show_id>/replay/auto-publish")
    @editors
    async def auto_publish(show_id: int) -> ResponseReturnValue:
        await access.show_for(db, current_user(), show_id, "replay")
        form = await request.form
        await replays.set_auto_publish(show_id, form.get("auto_publish") == "1")
        return back(show_id, "replay_saved")

    @bp.post("/admin/shows/<int:show_id>/replay/publish")
    @editors
    async def publish(show_id: int) -> ResponseReturnValue:
        await ready_replay(show_id)
        form = await request.form
        await replays.set_published(show_id, form.get("published") == "1")
        return back(show_id, "replay_saved")

    @bp.post("/admin/shows/<int:show_id>/replay/rename")
    @editors
    async def rename(show_id: int) -> ResponseReturnValue:
        await ready_replay(show_id)
        form = await request.form
        title = clean_text(form.get("title", ""), multiline=False)
        if len(title) > MAX_TITLE:
            return await refused(show_id, _("A title holds at most %(n)s characters.", n=MAX_TITLE))
        await replays.rename(show_id, title or None)
        return back(show_id, "replay_saved")

    @bp.post("/admin/shows/<int:show_id>/replay/trim")
    @editors
    async def trim(show_id: int) -> ResponseReturnValue:
        await ready_replay(show_id)
        form = await request.form
        whole = form.get("whole") == "1"  # "Undo the trim"
        start_text = "0" if whole else form.get("start", "").strip() or "0"
        end_text = "" if whole else form.get("end", "").strip()
        start = parse_time(start_text)
        end = parse_time(end_text) if end_text else None
        if start is None or (end_text and end is None):
            return await refused(
                show_id, _("Write times as minutes:seconds (like 2:30) or as seconds.")
            )
        if end is not None and end <= start:
            return await refused(show_id, _("The end must come after the start."))
        try:
            await replays.trim(show_id, start, end)
        except ReplayError as exc:
            return await refused(show_id, _(str(exc)))
        return back(show_id, "replay_trimmed")

    @bp.post("/admin/shows/<int:show_id>/replay/delete")
    @staff_required()
    async def delete(show_id: int) -> ResponseReturnValue:
        # Deleting is for those who may delete the show itself: the admins.
        await access.show_for(db, current_user(), show_id, "delete")
        if await replays.get(show_id) is None:
            abort(404)
        await replays.delete(show_id)
        return back(show_id, "replay_deleted")

    return bp
