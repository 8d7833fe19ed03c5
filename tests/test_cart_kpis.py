"""Cart KPIs: the page's `checkout` report (priced by the catalogue), and the funnel
(viewers, product clicks, add to cart, checkouts, orders) live and in replay, on the
engine, the JSON export and the dashboard."""

from __future__ import annotations

import json
import time

from quart import Quart
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.catalog.products import ProductData, create_product
from appliance.kpis.engine import compute
from appliance.kpis.events import EventLog, show_events
from appliance.services import Services

VIEWER = "v_cart_000000000001"


def ev(ts: float, viewer: str, kind: str, **props: object) -> dict[str, object]:
    return {"ts": ts, "viewer": viewer, "kind": kind, "props": props}


def test_funnel_live_and_replay() -> None:
    events = [
        ev(0, "a", "join", device="mobile", channel="direct"),
        ev(1, "b", "join", device="mobile", channel="direct"),
        ev(5, "a", "product_click", product=1),
        ev(6, "a", "add_to_cart", product=1, quantity=1, price=1000),
        ev(7, "b", "add_to_cart", product=2, quantity=1, price=500),
        ev(8, "a", "checkout", items=2, total=2500, products=[[1, 2], [2, 1]]),
        ev(9, "a", "purchase", order="o1", amount=2500, signed=True),
        ev(200, "c", "replay_view"),
        ev(201, "c", "product_click", product=2),
        ev(202, "c", "add_to_cart", product=2, quantity=1, price=500),
        ev(203, "c", "checkout", items=1, total=500, products=[[2, 1]]),
        ev(204, "c", "checkout", items=1, total=True, products=[[2, 1]]),  # a bad total: 0
    ]
    k = compute(events, 0.0, 100.0)
    assert k["funnel"]["live"] == {
        "viewers": 2,
        "product_clicks": 1,
        "add_to_cart": 2,
        "checkouts": 1,
        "orders": 1,
    }
    assert k["funnel"]["replay"] == {
        "viewers": 1,
        "product_clicks": 1,
        "add_to_cart": 1,
        "checkouts": 2,
        "orders": 0,
    }
    assert (k["checkouts"], k["checkout_total"]) == (1, 2500)
    assert (k["replay_checkouts"], k["replay_checkout_total"]) == (2, 500)


async def test_checkout_report_is_priced_by_the_catalogue(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    a = await create_product(
        services.db, ProductData("A", "", None, 1250, "EUR", "in_stock", "", ""), None
    )
    b = await create_product(
        services.db, ProductData("B", "", None, 300, "EUR", "in_stock", "", ""), None
    )
    show = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    now = time.time()
    await services.db.execute(
        "UPDATE shows SET status = 'live', live_started_at = ? WHERE id = ?", (now - 60, show)
    )
    client.set_cookie("localhost", "vitrine_viewer", VIEWER)

    async def post(body: object) -> int:
        r = await client.post("/api/events", data=json.dumps(body).encode())
        return r.status_code

    # The page's own total is not kept: 2 x 12.50 + 1 x 3.00 from the catalogue.
    report = {"products": [[a, 2], [b, 1]], "total": 1}
    assert await post({"show": show, "kind": "checkout", "props": report}) == 204
    for bad in ([], [[a]], [[a, 0]], [["x", 1]], "1:2", [[a, 1]] * 51):
        assert await post({"show": show, "kind": "checkout", "props": {"products": bad}}) == 400
    log: EventLog = app.extensions["vitrine.events"]
    await log.flush()
    [row] = [r for r in await show_events(services.db, show) if r["kind"] == "checkout"]
    assert row["props"] == {"products": [[a, 2], [b, 1]], "items": 3, "total": 2800}

    data = await (await client.get(f"/api/kpis/shows/{show}")).get_json()
    assert (data["checkouts"], data["checkout_total"]) == (1, 2800)
    page = await (await client.get(f"/admin/shows/{show}/kpis")).get_data(as_text=True)
    assert 'id="kpi-checkouts"' in page and 'id="kpi-checkout_total"' in page
    assert 'id="funnel-replay"' in page and "Checkouts" in page
