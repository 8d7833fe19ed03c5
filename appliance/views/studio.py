"""The seller's studio: camera, Go live / End show, viewer count, on a phone."""

from __future__ import annotations

import json

from quart import Blueprint, Response, abort
from quart.typing import ResponseReturnValue

from appliance import shows
from appliance.live import LiveShows, ice_servers
from appliance.services import Services
from appliance.web import current_user, render, show_or_404, staff_required

hosts_only = staff_required("admin", "host")
any_staff = staff_required("admin", "host", "moderator")


def blueprint(svc: Services, live: LiveShows) -> Blueprint:
    bp = Blueprint("studio", __name__)
    db = svc.db

    async def show_for_host(show_id: int) -> shows.Show:
        show = await show_or_404(db, show_id)
        user = current_user()
        # A host runs their own shows (and shows with no host yet); admins run any;
        # moderators moderate any show but do not publish.
        if user is not None and user.role == "host" and show.host_id not in (None, user.id):
            abort(403)
        return show

    @bp.get("/studio/<int:show_id>")
    @any_staff
    async def studio(show_id: int) -> ResponseReturnValue:
        show = await show_for_host(show_id)
        user = current_user()
        return await render(
            "studio.html",
            show=show,
            can_publish=user is not None and user.role in ("admin", "host"),
            stream_key=show.stream_key,
            whip_url=f"/whip/{show.id}",
            status_url=f"/api/shows/{show.id}/status",
            end_url=f"/studio/{show.id}/end",
            ice_servers_json=json.dumps(ice_servers(svc.config)),
            products=await shows.lineup(db, show.id),
            disk_refusal=live.go_live_refusal(show),
        )

    @bp.post("/studio/<int:show_id>/end")
    @hosts_only
    async def end(show_id: int) -> ResponseReturnValue:
        show = await show_for_host(show_id)
        if show.status == "ended":
            return Response("", status=204)
        await live.end(show.id)
        return Response("", status=204)

    return bp
