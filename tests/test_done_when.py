"""The foundation's acceptance path, through the forms a person uses."""

from __future__ import annotations

import re

import pytest
from quart.testing import QuartClient

from appliance.accounts.users import create_user
from appliance.services import Services
from tests.conftest import PASSWORD, csrf_of
from tests.helpers import PNG, file_field


async def test_admin_builds_a_show_and_viewers_see_it(
    client: QuartClient, services: Services
) -> None:
    await create_user(services.db, "owner@example.com", "Owner", "admin", PASSWORD)
    token = await csrf_of(client)
    r = await client.post(
        "/login", form={"email": "owner@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert r.status_code == 302
    token = await csrf_of(client, "/admin/products/new")
    for i, name in enumerate(["Scarf", "Tote", "Beanie"]):
        form = {
            "csrf_token": token,
            "name": name,
            "price": f"{10 + i}.50",
            "currency": "EUR",
            "stock_status": "in_stock",
            "product_url": f"https://shop.example/{name.lower()}",
        }
        r = await client.post("/admin/products/new", form=form, files={"image": file_field(PNG)})
        assert r.status_code == 302
    listing = await (await client.get("/admin/products")).get_data(as_text=True)
    ids = [int(x) for x in re.findall(r'href="/admin/products/(\d+)"', listing)]
    assert len(ids) == 3
    form = {
        "csrf_token": token,
        "title": "Friday live",
        "starts_at": "2031-05-02T19:00",
        "duration_minutes": "30",
        **{f"pos_{pid}": str(n) for n, pid in enumerate(ids, 1)},
    }
    r = await client.post("/admin/shows/new", form=form)
    assert r.status_code == 302
    show_id = int(re.search(r"/admin/shows/(\d+)", r.headers["Location"]).group(1))

    home = await (await client.get("/")).get_data(as_text=True)
    assert "Friday live" in home
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    for name in ("Scarf", "Tote", "Beanie"):
        assert name in page
    assert len(re.findall(r'<img src="/uploads/[^"]+\.png"', page)) == 3
    ics = await client.get(f"/shows/{show_id}/calendar.ics")
    text = await ics.get_data(as_text=True)
    assert (
        ics.status_code == 200
        and "DTSTART:20310502T170000Z" in text
        and "SUMMARY:Friday live" in text
    )


HOSTILE = [
    "",
    "x" * 20_000,
    "<img src=x onerror=alert(1)>",
    "' OR 1=1; --",
    "\u202e\u0000\U0001f600ñ",
    "１２３",
    "-1",
    "NaN",
    "1e309",
]
FORMS = {
    "/login": ["email", "password", "next"],
    "/admin/products/new": [
        "name",
        "description",
        "sku",
        "price",
        "currency",
        "stock_status",
        "product_url",
        "cart_url",
    ],
    "/admin/shows/new": [
        "title",
        "description",
        "starts_at",
        "duration_minutes",
        "host_id",
        "pos_1",
    ],
    "/admin/users": ["name", "email", "role", "password"],
    "/admin/settings": [
        "name",
        "brand_color",
        "currency",
        "language",
        "timezone",
        "cart_url_template",
    ],
}


@pytest.mark.parametrize("path", sorted(FORMS))
async def test_no_form_answers_500_to_hostile_values(
    client: QuartClient, services: Services, admin: str, path: str
) -> None:
    for field in FORMS[path]:
        for value in HOSTILE:
            form = {f: "ok" for f in FORMS[path]} | {field: value, "csrf_token": admin}
            r = await client.post(path, form=form)
            assert r.status_code < 500, (path, field, value[:20])
            body = await r.get_data(as_text=True)
            assert "<img src=x onerror" not in body
