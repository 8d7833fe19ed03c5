"""`GET /api/shows/<id>/checkout?items=3:2,5:1[&discount=CODE]`: the links that hand a
viewer's in-show cart to the shop (appliance/cart/checkout.py), with the cart priced by
the catalogue, and the discount code the viewer holds applied where the platform can.

The cart itself lives in the viewer's page (localStorage, per shop); the page asks here
each time the cart changes, so "Checkout" is a plain link the viewer follows. The cart is
the shop's, not the show's: a product added during an earlier show stays in it. Products
gone from the catalogue or sold out are left out; the sale is attributed to the show the
viewer checks out from, and the viewer (cookie) travels as vitrine_v.
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify, request
from quart.typing import ResponseReturnValue

from appliance.cart.checkout import BadCart, Item, handoffs, parse_discount, parse_items
from appliance.catalog.products import get_product
from appliance.catalog.shows import get_show
from appliance.i18n.locales import format_money
from appliance.services import Services
from appliance.views.web import VIEWER_COOKIE, valid_viewer


def problem(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("cart_api", __name__)

    @bp.get("/api/shows/<int:show_id>/checkout")
    async def checkout(show_id: int) -> ResponseReturnValue:
        try:
            lines = parse_items(request.args.get("items", ""))
            discount = parse_discount(request.args.get("discount", ""))
        except BadCart as exc:
            return problem(400, str(exc))
        show = await get_show(svc.db, show_id)
        if show is None:
            return problem(404, f"there is no show {show_id}")
        shop = await svc.shop()
        items: list[Item] = []
        total = 0
        for line in lines:
            p = await get_product(svc.db, line.product)
            if p is None or p.stock_status == "out_of_stock":
                continue  # no longer on sale: left out of the hand-off
            if p.currency == shop.currency:
                total += p.price_minor * line.quantity
            items.append(
                Item(
                    product=p.id,
                    quantity=line.quantity,
                    ref=p.variant_id or p.sku or "",
                    variant_id=p.variant_id,
                    link=p.cart_url,
                    page=p.product_url,
                )
            )
        viewer = valid_viewer(request.cookies.get(VIEWER_COOKIE)) or ""
        links = handoffs(
            shop.cart_platform, shop.cart_url_template, items, show_id, viewer, discount
        )
        response = jsonify(
            {
                "platform": shop.cart_platform,
                "items": [{"product": i.product, "quantity": i.quantity} for i in items],
                "total_minor": total,
                "currency": shop.currency,
                "total": format_money(total, shop.currency, shop.language),
                "links": [{"url": h.url, "products": list(h.products)} for h in links],
            }
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    return bp
