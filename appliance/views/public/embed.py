"""The player on the shop's own site: /embed.js, the public JSON it reads from the shop's
pages (the floating button's show, a product's replays), the line-up the player inside the
shop hands to the shop's cart, and the `embed` flag pages render with (`?embed=1`: no site
chrome, the bridge script, the origins it may talk to)."""

from __future__ import annotations

import time
from typing import Any

from quart import Blueprint, Response, abort, current_app, g, jsonify, request

from appliance.catalog import calendar, shows
from appliance.embed import feed
from appliance.embed.origins import framing_origins
from appliance.i18n.translate import _
from appliance.services import Services

# The pages a shop may frame (docs/embed.md): the show page, live or replay.
EMBEDDABLE_ENDPOINTS = frozenset({"public.show_page"})
CART_PATHS = {"shopify": "/cart", "woocommerce": "/cart/"}


def embed_origins(svc: Services) -> tuple[str, ...]:
    """The origins allowed to frame the player, for the shop as it is set now."""
    return framing_origins(svc.config.embed.allowed_origins, g.shop.cart_url_template)


def _public(response: Response, max_age: int) -> Response:
    # Read with fetch() from the shop's pages, without cookies: the same facts for all.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    response.headers["Vary"] = "Accept-Language"
    return response


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("embed", __name__)
    db = svc.db
    base = svc.config.base_url

    @bp.app_context_processor
    async def embed_context() -> dict[str, Any]:
        embedded = request.args.get("embed") == "1" and request.endpoint in EMBEDDABLE_ENDPOINTS
        return {
            "embed": embedded,
            # The origins the player may be framed by and talk to (the admin's settings
            # page lists them too).
            "embed_origins": " ".join(embed_origins(svc)) if "shop" in g else "",
        }

    @bp.get("/embed.js")
    async def script() -> Response:
        response = await current_app.send_static_file("embed.js")
        response.mimetype = "text/javascript"
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    @bp.get("/embed/status.json")
    async def status() -> Response:
        now = int(time.time())
        found = await feed.featured(db, now, svc.config.embed.next_within_hours)
        labels = {
            "live": _("Live now"),
            "next": _("Next show"),
            "calendar": _("Add to calendar"),
            "watch": _("Watch the show"),
            "close": _("Close the player"),
            "shrink": _("Shrink the player"),
            "expand": _("Enlarge the player"),
            "now": _("Starting now"),
            "replays": _("Seen in our live shows"),
            "added": _("Added to your cart"),
            "cart_failed": _("The shop could not add this item"),
        }
        body: dict[str, Any] = {
            "state": "none",
            "now": now,
            "platform": g.shop.cart_platform,
            "cart_path": CART_PATHS.get(g.shop.cart_platform, "/cart"),
            "labels": labels,
        }
        if found is not None:
            show = found.show
            url = f"{base}/shows/{show.id}"
            body["state"] = found.state
            body["show"] = {
                "id": show.id,
                "title": show.title,
                "url": url,
                "cover": f"{base}/uploads/{svc.uploads.viewer_name(show.cover)}"
                if show.cover
                else None,
                "starts_at": show.starts_at,
                "calendar": f"{url}/calendar.ics",
                "google": calendar.google_calendar_link(
                    title=show.title,
                    description=show.description,
                    starts_at=show.starts_at,
                    ends_at=show.ends_at,
                    url=url,
                ),
            }
        return _public(jsonify(body), 15)

    @bp.get("/embed/replays.json")
    async def replays() -> Response:
        ref = request.args.get("product", "").strip()
        if not ref or len(ref) > feed.MAX_REF:
            abort(400)
        found = await feed.product_replays(db, svc.replays, ref)
        for item in found:
            item["url"] = f"{base}/shows/{item['show_id']}"
            item["poster"] = f"{base}/replays/{item['show_id']}.jpg"
        return _public(jsonify({"replays": found}), 60)

    @bp.get("/embed/shows/<int:show_id>/products.json")
    async def products(show_id: int) -> Response:
        """What the player inside the shop sends with "Add to cart" (embed_bridge.js)."""
        if await shows.get_show(db, show_id) is None:
            abort(404)
        items = [
            {
                "product_id": p.id,
                "sku": p.sku or "",
                "variant_id": p.variant_id,
                "price_minor": p.price_minor,
                "currency": p.currency,
            }
            for p in await shows.lineup(db, show_id)
        ]
        response = jsonify({"show_id": show_id, "products": items})
        response.headers["Cache-Control"] = "no-cache"
        return response

    return bp
