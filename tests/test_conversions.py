"""Orders reported back by the shop: signed reports, the thank-you page beacon,
attribution to a show, duplicates, and what an unsigned order may and may not change."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.catalog.products import ProductData, create_product
from appliance.kpis import conversions
from appliance.kpis.events import EventLog
from appliance.services import Services

VIEWER = "v_buyer_0123456789"
PRICE = 5000  # the catalogue price of the product viewers add to the cart


async def new_show(services: Services) -> int:
    return await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))


async def new_product(services: Services, price: int = PRICE) -> int:
    data = ProductData("Scarf", "", None, price, "EUR", "in_stock", "https://shop.example/s", "")
    return await create_product(services.db, data, None)


async def live_show(services: Services) -> int:
    """A show whose live window holds now, so events and orders sent now count live."""
    show = await new_show(services)
    now = time.time()
    await services.db.execute(
        "UPDATE shows SET status = 'ended', live_started_at = ?, live_ended_at = ? WHERE id = ?",
        (now - 600, now + 3600, show),
    )
    return show


async def page_event(
    app: Quart, client: QuartClient, viewer: str, show: int, kind: str, props: dict[str, Any]
) -> None:
    """What a viewer's page sends to /api/events (with the viewer cookie), written."""
    client.set_cookie("localhost", "vitrine_viewer", viewer)
    body = json.dumps({"show": show, "kind": kind, "props": props}).encode()
    r = await client.post("/api/events", data=body, headers={"Content-Type": "text/plain"})
    assert r.status_code == 204, await r.get_data(as_text=True)
    log: EventLog = app.extensions["vitrine.events"]
    await log.flush()


async def figures(client: QuartClient, show: int) -> dict[str, Any]:
    r = await client.get(f"/api/kpis/shows/{show}")
    assert r.status_code == 200
    data: dict[str, Any] = await r.get_json()
    return data


def beacon(order_id: str, amount: int, viewer: str = VIEWER, **more: Any) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "currency": "EUR", "vitrine_v": viewer, **more}


BEACON = "/api/conversions/beacon"


async def report(
    client: QuartClient,
    services: Services,
    payload: Any,
    *,
    signed: bool = True,
    secret: str | None = None,
    path: str = "/api/conversions",
) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signed:
        key = secret if secret is not None else await conversions.get_secret(services.db)
        headers[conversions.SIGNATURE_HEADER] = conversions.sign(key, body)
    r = await client.post(path, data=body, headers=headers)
    return r.status_code, json.loads(await r.get_data(as_text=True))


async def add_to_cart(app: Quart, show: int, viewer: str = VIEWER, price: int = 2500) -> None:
    """An add_to_cart as the event log stores it (the catalogue's price)."""
    log: EventLog = app.extensions["vitrine.events"]
    log.add(
        show, time.time() - 60, viewer, "add_to_cart", {"product": 1, "quantity": 1, "price": price}
    )
    await log.flush()


async def test_signed_report_recorded_once(client: QuartClient, services: Services) -> None:
    show = await new_show(services)
    order = {"order_id": "1001", "amount": 4990, "currency": "EUR", "show": show}
    status, body = await report(client, services, order)
    assert (status, body["status"], body["show"]) == (201, "recorded", show)
    status, body = await report(client, services, order)  # the shop retried
    assert (status, body["status"]) == (200, "duplicate")
    rows = await services.db.fetchall("SELECT * FROM orders")
    assert [(r["order_id"], r["amount_minor"], r["show_id"], r["signed"]) for r in rows] == [
        ("1001", 4990, show, 1)
    ]


async def test_attribution_by_campaign_and_by_viewer(
    app: Quart, client: QuartClient, services: Services
) -> None:
    first, second = await new_show(services), await new_show(services)
    by_campaign = {"order_id": "A", "amount": 1, "currency": "eur", "utm_campaign": f"show-{first}"}
    assert (await report(client, services, by_campaign))[1]["show"] == first
    await add_to_cart(app, second)
    by_viewer = {"order_id": "B", "amount": 1, "currency": "EUR", "vitrine_v": VIEWER}
    assert (await report(client, services, by_viewer))[1]["show"] == second
    nowhere = {"order_id": "C", "amount": 1, "currency": "EUR"}
    status, body = await report(client, services, nowhere)
    assert status == 201 and body["show"] is None  # kept, even though no show is known


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{", "not JSON"),
        ({"amount": 1, "currency": "EUR"}, "order_id"),
        ({"order_id": "x", "amount": 12.5, "currency": "EUR"}, "amount"),
        ({"order_id": "x", "amount": -1, "currency": "EUR"}, "amount"),
        ({"order_id": "x", "amount": 1, "currency": "USD"}, "currency must be EUR"),
        ({"order_id": "x", "amount": 1, "currency": "EUR", "vitrine_v": "<b>"}, "vitrine_v"),
        ({"order_id": "x", "amount": 1, "currency": "EUR", "show": 999}, "no show 999"),
        ({"order_id": "x", "amount": 1, "currency": "EUR", "ts": time.time() + 9999}, "future"),
        ({"order_id": "x", "amount": 1, "currency": "EUR", "products": "1,2"}, "products"),
    ],
)
async def test_bad_reports_are_refused(
    client: QuartClient, services: Services, payload: Any, message: str
) -> None:
    status, body = await report(client, services, payload)
    assert status == 400 and message in body["error"]
    assert await services.db.fetchval("SELECT COUNT(*) FROM orders") == 0


async def test_signature_is_required_and_rotates(client: QuartClient, services: Services) -> None:
    order = {"order_id": "S1", "amount": 1, "currency": "EUR"}
    assert (await report(client, services, order, signed=False))[0] == 401
    assert (await report(client, services, order, secret="guess"))[0] == 401
    old = await conversions.get_secret(services.db)
    assert len(old) == 64  # every shop starts with its own random secret
    await conversions.rotate_secret(services.db)
    assert (await report(client, services, order, secret=old))[0] == 401
    assert (await report(client, services, order))[0] == 201


async def test_thank_you_beacon_only_for_real_buyers(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    order = {"order_id": "T1", "amount": 2500, "currency": "EUR", "vitrine_v": VIEWER}
    path = "/api/conversions/beacon"
    status, body = await report(client, services, order, signed=False, path=path)
    assert status == 400 and "added to the cart" in body["error"]
    await add_to_cart(app, show)
    status, body = await report(client, services, order, signed=False, path=path)
    assert (status, body["show"]) == (201, show)
    row = await services.db.fetchone("SELECT signed FROM orders WHERE order_id = 'T1'")
    assert row is not None and row["signed"] == 0
    preflight = await client.options(path)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"


async def test_settings_show_and_rotate_the_secret(
    client: QuartClient, services: Services, admin: str
) -> None:
    secret = await conversions.get_secret(services.db)
    page = await (await client.get("/admin/settings")).get_data(as_text=True)
    assert secret in page and "/api/conversions" in page
    r = await client.post("/admin/settings/conversion-secret", form={"csrf_token": admin})
    assert r.status_code == 302
    assert await conversions.get_secret(services.db) != secret


async def test_forged_cart_and_beacons_do_not_make_sales(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    """The audit's sequence: a made-up viewer "adds to the cart" at a made-up price, then
    sends unsigned beacons worth 15,000,000. Nothing of it reaches the figures."""
    show, product = await live_show(services), await new_product(services)
    forger = "v_forger_000000000000"
    await page_event(app, client, forger, show, "join", {})
    cart = {"product": product, "quantity": 1, "price": 5_000_000}
    await page_event(app, client, forger, show, "add_to_cart", cart)
    stored = await services.db.fetchval("SELECT props FROM events WHERE kind = 'add_to_cart'")
    assert json.loads(stored)["price"] == PRICE  # the catalogue's, not the page's
    for n in range(3):
        status, body = await report(
            client, services, beacon(f"F{n}", 5_000_000, forger), signed=False, path=BEACON
        )
        assert status == 400 and "amount" in body["error"]
    # Even a beacon the cart does account for stays apart from the sales.
    status, _body = await report(
        client, services, beacon("F9", PRICE, forger), signed=False, path=BEACON
    )
    assert status == 201
    kpis = await figures(client, show)
    assert (kpis["orders"], kpis["revenue"], kpis["conversion_rate"]) == (0, 0, 0.0)
    assert (kpis["unverified_orders"], kpis["unverified_revenue"]) == (1, PRICE)
    page = await (await client.get(f"/admin/shows/{show}/kpis")).get_data(as_text=True)
    assert "Unverified orders" in page and "€50.00" in page
    trend = await (await client.get("/admin/kpis")).get_data(as_text=True)
    assert "Unverified sales" in trend and "€50.00" in trend


async def test_signed_report_replaces_an_unsigned_one(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    show = await live_show(services)
    await add_to_cart(app, show, price=PRICE)
    status, _body = await report(client, services, beacon("1001", 100), signed=False, path=BEACON)
    assert status == 201
    signed = {"order_id": "1001", "amount": 4990, "currency": "EUR", "show": show, "products": [7]}
    status, body = await report(client, services, signed)
    assert (status, body["status"], body["show"]) == (201, "replaced", show)
    row = await services.db.fetchone("SELECT * FROM orders WHERE order_id = '1001'")
    assert row is not None
    assert (row["amount_minor"], row["signed"], row["products"]) == (4990, 1, "[7]")
    assert (await figures(client, show))["revenue"] == 4990
    # The shop retrying its signed report is still a duplicate.
    assert (await report(client, services, signed))[1]["status"] == "duplicate"
    # A signed report naming neither show nor viewer keeps the ones the beacon had.
    assert (await report(client, services, beacon("1003", 100), signed=False, path=BEACON))[
        0
    ] == 201
    bare = {"order_id": "1003", "amount": 2000, "currency": "EUR"}
    status, body = await report(client, services, bare)
    assert (status, body["status"], body["show"]) == (201, "replaced", show)
    row = await services.db.fetchone("SELECT * FROM orders WHERE order_id = '1003'")
    assert row is not None
    assert (row["show_id"], row["viewer"], row["amount_minor"], row["signed"]) == (
        show,
        VIEWER,
        2000,
        1,
    )


async def test_unsigned_report_never_replaces_a_signed_one(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    await add_to_cart(app, show, price=PRICE)
    signed = {"order_id": "1002", "amount": 4990, "currency": "EUR", "show": show}
    assert (await report(client, services, signed))[0] == 201
    status, body = await report(client, services, beacon("1002", 10), signed=False, path=BEACON)
    assert (status, body["status"]) == (200, "duplicate")
    row = await services.db.fetchone("SELECT amount_minor, signed FROM orders")
    assert row is not None and (row["amount_minor"], row["signed"]) == (4990, 1)


async def test_the_setting_counts_unsigned_orders(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    show = await live_show(services)
    await add_to_cart(app, show, price=PRICE)
    assert (await report(client, services, beacon("U1", 4000), signed=False, path=BEACON))[0] == 201
    assert (await figures(client, show))["revenue"] == 0
    r = await client.post(
        "/admin/settings/sales", form={"csrf_token": admin, "count_unsigned": "1"}
    )
    assert r.status_code == 302
    assert (await services.shop()).count_unsigned_orders
    page = await (await client.get("/admin/settings")).get_data(as_text=True)
    assert 'name="count_unsigned" value="1" checked' in page
    kpis = await figures(client, show)
    assert (kpis["orders"], kpis["revenue"], kpis["unverified_orders"]) == (1, 4000, 1)
    r = await client.post("/admin/settings/sales", form={"csrf_token": admin})
    assert r.status_code == 302
    assert (await figures(client, show))["revenue"] == 0


async def test_a_beacon_must_match_the_viewers_cart(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    await add_to_cart(app, show, price=PRICE)
    # The cart is worth 5000; the allowance is the dearest item's price (more than 2 %).
    status, body = await report(
        client, services, beacon("M1", 2 * PRICE + 1), signed=False, path=BEACON
    )
    assert status == 400 and "amount is more than this viewer added" in body["error"]
    assert await services.db.fetchval("SELECT COUNT(*) FROM orders") == 0
    assert (await report(client, services, beacon("M2", 5200), signed=False, path=BEACON))[0] == 201
    # One add to cart backs one order, not one per order id the page makes up.
    status, body = await report(client, services, beacon("M3", 1), signed=False, path=BEACON)
    assert status == 400 and "already back" in body["error"]
    # Another show's cart does not back an order naming this one.
    other = await new_show(services)
    status, _body = await report(
        client, services, beacon("M4", 1, show=other), signed=False, path=BEACON
    )
    assert status == 400


async def test_deeply_nested_reports_are_refused(client: QuartClient, services: Services) -> None:
    for path in ("/api/conversions", BEACON):
        for body in (
            b"[" * 3000,
            b'{"a":' * 3000,
            b'{"order_id": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}',
        ):
            r = await client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert r.status_code in (400, 401), (path, r.status_code)
    status, body = await report(client, services, b"[" * 3000)  # signed, so it is parsed
    assert status == 400 and "nests deeper" in body["error"]
