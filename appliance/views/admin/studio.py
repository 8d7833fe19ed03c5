"""The seller's studio: camera, Go live / End show, viewer count, on a phone."""

from __future__ import annotations

import json

from quart import Blueprint, Response, abort, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.catalog import shows
from appliance.lan import is_loopback_host
from appliance.live.bridge import LiveShows, ice_servers
from appliance.services import Services
from appliance.views.web import current_user, render, staff_required

hosts_only = staff_required("admin", "host")
any_staff = staff_required("admin", "host", "moderator")


def blueprint(svc: Services, live: LiveShows) -> Blueprint:
    bp = Blueprint("studio", __name__)
    db = svc.db

    @bp.get("/studio/<int:show_id>")
    @any_staff
    async def studio(show_id: int) -> ResponseReturnValue:
        # Whoever may publish the show runs the camera; an assigned moderator gets the
        # moderation panel alone, with no stream key anywhere in the page.
        user = current_user()
        show = await access.show_for(db, user, show_id, "view")
        can_publish = await access.may(db, user, "publish", show)
        if not can_publish and not await access.may(db, user, "moderate", show):
            abort(403)
        return await render(
            "studio.html",
            show=show,
            can_publish=can_publish,
            stream_key=show.stream_key if can_publish else "",
            whip_url=f"/whip/{show.id}" if can_publish else "",
            status_url=f"/api/shows/{show.id}/status",
            end_url=f"/studio/{show.id}/end",
            ice_servers_json=json.dumps(ice_servers(svc.config)),
            products=await shows.lineup(db, show.id),
            disk_refusal=live.go_live_refusal(show),
            # Plain HTTP from another device: no camera there. Say how to get https.
            insecure_remote=not svc.config.https and not is_loopback_host(request.host),
        )

    @bp.post("/studio/<int:show_id>/end")
    @hosts_only
    async def end(show_id: int) -> ResponseReturnValue:
        show = await access.show_for(db, current_user(), show_id, "publish")
        if show.status == "ended":
            return Response("", status=204)
        await live.end(show.id)
        return Response("", status=204)

    return bp
