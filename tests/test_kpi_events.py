"""KPI event capture: `POST /api/events` from viewer pages, batched into SQLite, and the
raw event export."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.catalog.products import ProductData, create_product
from appliance.kpis.events import EventLog, channel_of, device_of, show_events
from appliance.services import Services

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit Mobile/15E148"
VIEWER = "v_abcdefghijklmnop"


async def new_show(services: Services) -> int:
    return await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))


async def post(
    client: QuartClient, body: Any, viewer: str | None = VIEWER, **headers: str
) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"Content-Type": "text/plain;charset=UTF-8", **headers}
    if viewer is not None:
        client.set_cookie("localhost", "vitrine_viewer", viewer)
    else:
        client.delete_cookie("localhost", "vitrine_viewer")
    r = await client.post("/api/events", data=data, headers=hdrs)
    text = await r.get_data(as_text=True)
    return r.status_code, (json.loads(text) if text else None)


def events_log(app: Quart) -> EventLog:
    log: EventLog = app.extensions["vitrine.events"]
    return log


async def new_product(services: Services, price: int) -> int:
    data = ProductData("Scarf", "", None, price, "EUR", "in_stock", "https://shop.example/s", "")
    return await create_product(services.db, data, None)


async def test_a_page_reports_join_heartbeat_clicks_and_leave(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    product = await new_product(services, 1999)
    referrer = {"utm_source": "", "referrer": "https://www.instagram.com/p/xyz"}
    status, _ = await post(
        client, {"show": show, "kind": "join", "props": referrer}, **{"User-Agent": IPHONE}
    )
    assert status == 204
    batch = {
        "show": show,
        "events": [
            {"kind": "heartbeat"},
            {"kind": "product_click", "props": {"product": product}},
            {"kind": "add_to_cart", "props": {"product": product, "quantity": 2, "price": 1999}},
            {"kind": "calendar_add", "props": {"ignored": "x" * 50}},
            {"kind": "leave", "ts": time.time() - 5},
        ],
    }
    assert (await post(client, batch))[0] == 204
    # Nothing is written per request: the batch goes in at the next flush.
    assert await services.db.fetchval("SELECT COUNT(*) FROM events") == 0
    await events_log(app).flush()
    rows = await show_events(services.db, show)
    assert [r["kind"] for r in rows] == [
        "leave",
        "join",
        "heartbeat",
        "product_click",
        "add_to_cart",
        "calendar_add",
    ]
    assert {r["viewer"] for r in rows} == {VIEWER}
    by_kind = {r["kind"]: r["props"] for r in rows}
    assert by_kind["join"] == {"device": "mobile", "channel": "instagram.com"}
    assert by_kind["add_to_cart"] == {"product": product, "quantity": 2, "price": 1999}
    assert by_kind["calendar_add"] == {}  # what the page adds beyond the definition is dropped
    # No address or user agent is stored anywhere in the log.
    raw = await services.db.fetchall("SELECT * FROM events")
    assert all("127.0.0.1" not in json.dumps(dict(r)) for r in raw)
    assert all("iPhone" not in json.dumps(dict(r)) for r in raw)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        ([1, 2], "JSON object"),
        ({"kind": "join"}, "show must be"),
        ({"show": 1, "kind": "explode"}, "unknown event kind"),
        ({"show": 1, "kind": "product_click", "props": {}}, "product must be"),
        (
            {"show": 1, "kind": "add_to_cart", "props": {"product": 1, "quantity": 10**6}},
            "quantity",
        ),
        ({"show": 1, "kind": "add_to_cart", "props": {"product": 1, "price": -5}}, "price"),
        ({"show": 1, "kind": "heartbeat", "ts": time.time() + 3600}, "future"),
        ({"show": 1, "kind": "heartbeat", "ts": 1000.0}, "a day old"),
        ({"show": 1, "kind": "heartbeat", "props": []}, "props must be"),
        ({"show": 1, "events": []}, "non-empty"),
        ({"show": 1, "events": [{"kind": "heartbeat"}] * 21}, "at most 20"),
        (b"[" * 3000, "nests deeper"),
        (b'{"show": 1, "props": ' + b"[" * 3000, "nests deeper"),
        (b'{"show": 1, "kind": "join", "props": {"referrer": "' + b"[" * 3000 + b'"}}', ""),
    ],
)
async def test_bad_reports_get_400_and_store_nothing(
    app: Quart, client: QuartClient, services: Services, body: Any, message: str
) -> None:
    await new_show(services)
    status, answer = await post(client, body)
    if not message:  # brackets inside a string are text, not nesting
        assert status == 204
        return
    assert status == 400
    assert message in answer["error"]
    await events_log(app).flush()
    assert await services.db.fetchval("SELECT COUNT(*) FROM events") == 0


async def test_refusals_other_than_bad_json(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    ok = {"show": show, "kind": "heartbeat"}
    assert (await post(client, ok, viewer=None))[0] == 400  # no viewer cookie
    assert (await post(client, {"show": 999, "kind": "heartbeat"}))[0] == 404
    assert (await post(client, ok, Origin="https://evil.example"))[0] == 403
    big = {"show": show, "kind": "heartbeat", "props": {"pad": "x" * 9000}}
    assert (await post(client, big))[0] == 413
    assert (await post(client, ok, Origin="http://localhost"))[0] == 204


async def test_rate_limit_per_viewer(app: Quart, client: QuartClient, services: Services) -> None:
    show = await new_show(services)
    limit = services.config.kpis.events_per_minute
    batch = {"show": show, "events": [{"kind": "heartbeat"}] * 20}
    statuses = [(await post(client, batch))[0] for _ in range(limit // 20 + 2)]
    assert statuses.count(204) == limit // 20
    assert statuses[-1] == 429
    # Another viewer is not held back by the first.
    assert (await post(client, batch, viewer="v_someone_else_entirely"))[0] == 204
    await events_log(app).flush()
    assert await services.db.fetchval("SELECT COUNT(*) FROM events") == limit + 20


async def test_events_of_a_deleted_show_do_not_fail_the_batch(
    app: Quart, client: QuartClient, services: Services
) -> None:
    kept, gone = await new_show(services), await new_show(services)
    log = events_log(app)
    log.add(kept, time.time(), VIEWER, "heartbeat", {})
    log.add(gone, time.time(), VIEWER, "heartbeat", {})
    await services.db.execute("DELETE FROM shows WHERE id = ?", (gone,))
    await log.flush()
    assert log.pending == 0
    rows = await services.db.fetchall("SELECT show_id FROM events")
    assert [r["show_id"] for r in rows] == [kept]


def test_device_and_channel() -> None:
    assert device_of(IPHONE) == "mobile"
    assert device_of("Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari") == "mobile"
    assert device_of("Mozilla/5.0 (Linux; Android 13; SM-X200) Safari") == "tablet"
    assert device_of("Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)") == "tablet"
    assert device_of("Mozilla/5.0 (X11; Linux x86_64) Chrome/120") == "desktop"
    assert channel_of("Newsletter", "https://t.co/x", "shop.example") == "newsletter"
    assert channel_of("", "https://www.facebook.com/", "shop.example") == "facebook.com"
    assert channel_of(None, "https://shop.example/shows/1", "shop.example") == "direct"
    assert channel_of(None, "", "shop.example") == "direct"


async def test_the_page_cannot_set_the_price_of_what_it_adds_to_the_cart(
    app: Quart, client: QuartClient, services: Services
) -> None:
    show = await new_show(services)
    product = await new_product(services, 2900)
    batch = {
        "show": show,
        "events": [
            {"kind": "add_to_cart", "props": {"product": product, "price": 5_000_000}},
            {"kind": "add_to_cart", "props": {"product": 4242, "price": 5_000_000}},
        ],
    }
    assert (await post(client, batch))[0] == 204
    await events_log(app).flush()
    carts = [e["props"] for e in await show_events(services.db, show)]
    assert sorted((c["product"], c["price"]) for c in carts) == [(product, 2900), (4242, 0)]


async def test_event_export_defuses_formulas_in_every_column(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    show = await new_show(services)
    cookie = "-A1-A1-A1-A1-A1-A1"  # the audit's cookie: a valid viewer id, and a formula
    assert (await post(client, {"show": show, "kind": "heartbeat"}, viewer=cookie))[0] == 204
    await events_log(app).flush()
    body = await (await client.get(f"/admin/shows/{show}/events.csv")).get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == ["ts", "viewer", "kind", "props"]
    assert rows[1][1] == "'" + cookie  # a spreadsheet shows it as text, never runs it
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
