"""The KPI dashboard: one show's page, the trend across shows, CSV and JSON exports."""

from __future__ import annotations

import csv
import io
import json

from quart import Quart
from quart.testing import QuartClient

from appliance.accounts.users import create_user
from appliance.catalog import shows
from appliance.kpis.events import EventLog
from appliance.services import Services
from tests.conftest import PASSWORD, sign_in, sign_in_as

START = 1_900_000_000  # 2030-03-17


async def ended_show(services: Services, title: str = "Spring <b>sale</b>", day: int = 0) -> int:
    show = await shows.create_show(
        services.db, shows.ShowData(title, "", START + day * 86400, 60, None)
    )
    start = START + day * 86400
    await services.db.execute(
        "UPDATE shows SET status = 'ended', live_started_at = ?, live_ended_at = ? WHERE id = ?",
        (start, start + 600, show),
    )
    return show


async def fill(app: Quart, services: Services, show: int, start: int = START) -> None:
    log: EventLog = app.extensions["vitrine.events"]
    for viewer, device in (("v_one_0000000000001", "mobile"), ("v_two_0000000000002", "desktop")):
        log.add(show, start, viewer, "join", {"device": device, "channel": "instagram.com"})
        for t in range(15, 300, 15):
            log.add(show, start + t, viewer, "heartbeat", {})
    log.add(show, start + 30, "v_one_0000000000001", "chat", {})
    log.add(show, start + 40, "v_one_0000000000001", "add_to_cart", {"product": 1, "price": 100})
    await log.flush()
    await services.db.execute(
        "INSERT INTO orders (order_id, show_id, viewer, amount_minor, currency, signed, ts) "
        "VALUES (?, ?, 'v_one_0000000000001', 4990, 'EUR', 1, ?)",
        (f"o-{show}", show, start + 100),
    )


async def test_show_page_figures_charts_and_escaping(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    show = await ended_show(services)
    await fill(app, services, show)
    r = await client.get(f"/admin/shows/{show}/kpis")
    page = await r.get_data(as_text=True)
    assert r.status_code == 200
    assert "Spring &lt;b&gt;sale&lt;/b&gt;" in page and "<b>sale</b>" not in page
    assert page.count('<svg class="chart"') == 6  # with the replay funnel
    assert "Reference: 8% to 10%" in page and "Reference: about 30%" in page
    data = await (await client.get(f"/api/kpis/shows/{show}")).get_json()
    assert (data["viewers"], data["orders"], data["revenue"], data["chatters"]) == (2, 1, 4990, 1)
    assert data["engagement_rate"] == 0.5 and data["conversion_rate"] == 0.5
    assert data["avg_watch_seconds"] == 300  # joined at 0, last heartbeat at 285 (+15)
    assert 'id="kpi-conversion_rate" title="Share of viewers who placed an order."' in page

    # New events after a first reading show up in the next one.
    log: EventLog = app.extensions["vitrine.events"]
    log.add(show, START + 50, "v_three_00000000003", "join", {"device": "tablet"})
    await log.flush()
    data = await (await client.get(f"/api/kpis/shows/{show}")).get_json()
    assert data["viewers"] == 3


async def test_across_shows_filter_and_csv(
    app: Quart, client: QuartClient, services: Services, admin: str
) -> None:
    first = await ended_show(services, "=HYPERLINK(1)", day=0)
    second = await ended_show(services, "Second", day=7)
    await fill(app, services, first)
    await fill(app, services, second, START + 7 * 86400)
    page = await (await client.get("/admin/kpis")).get_data(as_text=True)
    assert page.index(f"/admin/shows/{first}/kpis") < page.index(f"/admin/shows/{second}/kpis")
    only_second = await (await client.get("/admin/kpis?from=2030-03-20")).get_data(as_text=True)
    assert f"/admin/shows/{second}/kpis" in only_second
    assert f"/admin/shows/{first}/kpis" not in only_second
    by_figure = await (await client.get("/admin/kpis?figure=revenue")).get_data(as_text=True)
    assert "Sales, show after show" in by_figure and "€49.90" in by_figure
    assert (await client.get("/admin/kpis?figure=nope")).status_code == 400
    r = await client.get("/admin/kpis?from=yesterday")
    assert r.status_code == 400 and "must be a date" in await r.get_data(as_text=True)

    body = await (await client.get("/admin/kpis.csv")).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["title"] for r in rows] == ["'=HYPERLINK(1)", "Second"]  # no formula
    assert rows[0]["viewers"] == "2" and rows[0]["revenue"] == "4990"
    api = await (await client.get("/api/kpis?to=2030-03-18")).get_json()
    assert [s["show"] for s in api["shows"]] == [first]

    raw = await (await client.get(f"/admin/shows/{first}/events.csv")).get_data(as_text=True)
    events = list(csv.DictReader(io.StringIO(raw)))
    assert {e["kind"] for e in events} == {"join", "heartbeat", "chat", "add_to_cart", "purchase"}
    assert json.loads(events[0]["props"]) == {"channel": "instagram.com", "device": "mobile"}


async def test_only_admins_and_hosts_read_kpis(client: QuartClient, services: Services) -> None:
    show = await ended_show(services)
    r = await client.get(f"/api/kpis/shows/{show}")
    assert r.status_code == 401
    await sign_in(client, services, "moderator")
    assert (await client.get(f"/api/kpis/shows/{show}")).status_code == 403
    assert (await client.get(f"/admin/shows/{show}/kpis")).status_code == 403
    assert (await client.get("/admin/kpis.csv")).status_code == 403


async def test_host_reads_kpis_of_a_show_never_live(
    client: QuartClient, services: Services
) -> None:
    host = await create_user(services.db, "host@example.com", "Hana", "host", PASSWORD)
    show = await shows.create_show(services.db, shows.ShowData("Later", "", START, 60, host.id))
    await sign_in_as(client, host.email)
    page = await (await client.get(f"/admin/shows/{show}/kpis")).get_data(as_text=True)
    assert "has not been live yet" in page
    assert (await client.get("/api/kpis/shows/4242")).status_code == 404
