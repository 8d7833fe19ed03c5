"""The host's guest controls in the studio: a one-time guest link, the layout viewers
see, the guest's sound, and removing the guest. JSON for studio/guest.js; every change
needs the right to publish the show and the page's CSRF token (X-CSRF-Token)."""

from __future__ import annotations

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.live import guests
from appliance.live.guest_stage import LAYOUTS, Guests
from appliance.services import Services
from appliance.views.web import current_user, staff_required

hosts_only = staff_required("admin", "host")


def blueprint(svc: Services, stage: Guests) -> Blueprint:
    bp = Blueprint("studio_guest", __name__)
    db = svc.db

    async def state(show_id: int) -> dict[str, object]:
        current = stage.stage(show_id)
        return {
            "guest": current.guest,
            "layout": current.layout,
            "muted": current.muted,
            "link": await guests.pending(db, show_id),
        }

    @bp.get("/studio/<int:show_id>/guest")
    @hosts_only
    async def show_state(show_id: int) -> ResponseReturnValue:
        await access.show_for(db, current_user(), show_id, "publish")
        return await state(show_id), 200, {"Cache-Control": "no-store"}

    @bp.post("/studio/<int:show_id>/guest/link")
    @hosts_only
    async def new_link(show_id: int) -> ResponseReturnValue:
        user = current_user()
        show = await access.show_for(db, user, show_id, "publish")
        if show.status == "ended":
            return {"error": "this show has ended"}, 409
        token = await guests.create(
            db, show_id, user.id if user else None, svc.config.engagement.guest_link_hours
        )
        url = f"{svc.config.base_url}/guest/{show_id}/{token}"
        return {**await state(show_id), "url": url}, 201

    @bp.post("/studio/<int:show_id>/guest/<action>")
    @hosts_only
    async def change(show_id: int, action: str) -> ResponseReturnValue:
        await access.show_for(db, current_user(), show_id, "publish")
        form = await request.form
        if action == "layout":
            layout = form.get("layout", "")
            if layout not in LAYOUTS:
                return {"error": f"layout must be one of {', '.join(LAYOUTS)}"}, 400
            stage.set_layout(show_id, layout)
        elif action in ("mute", "unmute"):
            stage.set_muted(show_id, action == "mute")
        elif action == "remove":
            await stage.remove(show_id)
        else:
            return {"error": "no such action"}, 404
        return await state(show_id), 200

    return bp
