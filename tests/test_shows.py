from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from quart.testing import QuartClient

from appliance.catalog import shows
from appliance.catalog.products import ProductData, create_product
from appliance.services import Services
from tests.helpers import PNG, file_field


async def make_products(services: Services, n: int = 4) -> list[int]:
    ids = []
    for i in range(n):
        data = ProductData(f"Product {i}", "", f"SKU-{i}", 1000 + i, "EUR", "in_stock", "", "")
        ids.append(await create_product(services.db, data, None))
    return ids


def show_form(token: str, **changes: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "title": "Winter coats, live",
        "description": "Try-ons & questions.\nSecond line.",
        "starts_at": "2030-01-15T18:30",
        "duration_minutes": "45",
        "host_id": "",
        **changes,
    }


async def test_schedule_a_show_with_three_products(
    client: QuartClient, services: Services, admin: str
) -> None:
    ids = await make_products(services)
    form = show_form(admin, **{f"pos_{ids[2]}": "1", f"pos_{ids[0]}": "2", f"pos_{ids[3]}": "3"})
    r = await client.post("/admin/shows/new", form=form, files={"cover": file_field(PNG)})
    assert r.status_code == 302, await r.get_data(as_text=True)
    show_id = int(re.search(r"/admin/shows/(\d+)", r.headers["Location"]).group(1))
    show = await shows.get_show(services.db, show_id)
    assert show is not None and show.status == "scheduled" and show.cover
    # 18:30 in the shop's time zone (Europe/Paris, UTC+1 in January).
    assert show.starts_at == int(datetime(2030, 1, 15, 17, 30, tzinfo=UTC).timestamp())
    assert [p.id for p in await shows.lineup(services.db, show_id)] == [ids[2], ids[0], ids[3]]
    assert show.stream_key.startswith("sk_") and len(show.stream_key) > 30

    home = await (await client.get("/")).get_data(as_text=True)
    assert "Winter coats, live" in home and f'href="/shows/{show_id}"' in home
    assert f'data-starts="{show.starts_at}"' in home
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    assert page.index("Product 2") < page.index("Product 0") < page.index("Product 3")
    assert "Product 1" not in page
    assert f"/shows/{show_id}/calendar.ics" in page
    assert "https://calendar.google.com/calendar/render?action=TEMPLATE" in page
    assert '<meta property="og:title" content="Winter coats, live">' in page
    assert (
        f'<meta property="og:image" content="http://127.0.0.1:8080/uploads/{show.cover}">' in page
    )

    edit = await (await client.get(f"/admin/shows/{show_id}")).get_data(as_text=True)
    assert 'value="2030-01-15T18:30"' in edit and show.stream_key in edit
    assert f"http://127.0.0.1:8080/whip/{show_id}" in edit


async def test_calendar_file_is_valid_ics(client: QuartClient, services: Services) -> None:
    starts = int(datetime(2030, 3, 1, 18, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp())
    long_title = "Spring; sale, with a very long title that needs folding " * 2
    show_id = await shows.create_show(
        services.db, shows.ShowData(long_title.strip(), "Line 1\nLine 2", starts, 90, None)
    )
    r = await client.get(f"/shows/{show_id}/calendar.ics")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in r.headers["Content-Disposition"]
    raw = await r.get_data()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    physical = raw.split(b"\r\n")[:-1]
    assert all(len(line) <= 75 for line in physical)
    unfolded = raw.decode().replace("\r\n ", "").split("\r\n")
    fields: dict[str, str] = {}
    for line in unfolded:
        if line and not line.startswith(("BEGIN", "END")):
            key, value = line.split(":", 1)
            fields.setdefault(key, value)  # the event's own fields come before its alarm's
    assert unfolded[0] == "BEGIN:VCALENDAR" and unfolded[-2] == "END:VCALENDAR"
    assert fields["DTSTART"] == "20300301T170000Z"
    assert fields["DTEND"] == "20300301T183000Z"
    assert fields["SUMMARY"].startswith("Spring\\; sale\\, with")
    assert "Line 1\\nLine 2" in fields["DESCRIPTION"]
    assert fields["UID"] == f"show-{show_id}@127.0.0.1"
    assert fields["URL"] == f"http://127.0.0.1:8080/shows/{show_id}"


async def test_stream_key_rotation_and_end(
    client: QuartClient, services: Services, admin: str
) -> None:
    show_id = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    before = (await shows.get_show(services.db, show_id)).stream_key
    r = await client.post(f"/admin/shows/{show_id}/rotate-key", form={"csrf_token": admin})
    assert r.status_code == 302
    after = (await shows.get_show(services.db, show_id)).stream_key
    assert after != before
    r = await client.post(
        f"/admin/shows/{show_id}/end", form={"csrf_token": admin, "confirm": "yes"}
    )
    assert r.status_code == 302
    assert (await shows.get_show(services.db, show_id)).status == "ended"
    r = await client.post(f"/admin/shows/{show_id}/end", form={"csrf_token": admin})
    assert r.status_code == 409


async def test_lifecycle_transitions_are_checked(services: Services) -> None:
    show_id = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    await shows.go_live(services.db, show_id)
    live = await shows.get_show(services.db, show_id)
    assert live.status == "live" and live.live_started_at
    with pytest.raises(shows.BadTransition):
        await shows.go_live(services.db, show_id)
    await shows.end_show(services.db, show_id)
    with pytest.raises(shows.BadTransition):
        await shows.go_live(services.db, show_id)
    with pytest.raises(shows.BadTransition):
        await shows.end_show(services.db, 9999)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"title": ""}, "This field is required."),
        ({"title": "<b>" * 50}, "Keep this under 120 characters."),
        ({"starts_at": "tomorrow"}, "Enter a date and time."),
        ({"starts_at": "1850-01-01T10:00"}, "Enter a date and time."),
        ({"duration_minutes": "0"}, "Enter a number from 5 to 1440."),
        ({"duration_minutes": "1e9"}, "Enter a whole number."),
        ({"host_id": "999"}, "Choose one of the offered values."),
        ({"pos_1": "first"}, "Positions in the line-up must be whole numbers."),
    ],
)
async def test_bad_show_forms_write_nothing(
    client: QuartClient, services: Services, admin: str, changes: dict[str, str], message: str
) -> None:
    await make_products(services, 1)
    r = await client.post("/admin/shows/new", form=show_form(admin, **changes))
    assert r.status_code == 400
    assert message in await r.get_data(as_text=True)
    assert await shows.list_shows(services.db) == []


async def test_admin_deletes_show_but_not_while_live(
    client: QuartClient, services: Services, admin: str
) -> None:
    show_id = await shows.create_show(services.db, shows.ShowData("S", "", 2_000_000_000, 60, None))
    await shows.go_live(services.db, show_id)
    r = await client.post(f"/admin/shows/{show_id}/delete", form={"csrf_token": admin})
    assert r.status_code == 409
    await shows.end_show(services.db, show_id)
    r = await client.post(
        f"/admin/shows/{show_id}/delete", form={"csrf_token": admin, "confirm": "yes"}
    )
    assert r.status_code == 302
    assert await shows.get_show(services.db, show_id) is None
    assert (await client.get(f"/shows/{show_id}")).status_code == 404
