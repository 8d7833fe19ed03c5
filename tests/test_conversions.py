"""Orders reported back by the shop: signed reports, the thank-you page beacon,
attribution to a show, duplicates."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance import conversions, shows
from appliance.events import EventLog
from appliance.services import Services

VIEWER = "v_buyer_0123456789"


async def new_show(services: Services) -> int:
    return await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))


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


async def add_to_cart(app: Quart, show: int, viewer: str = VIEWER) -> None:
    log: EventLog = app.extensions["vitrine.events"]
    log.add(
        show, time.time() - 60, viewer, "add_to_cart", {"product": 1, "quantity": 1, "price": 100}
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
