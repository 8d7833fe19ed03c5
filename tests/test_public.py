from __future__ import annotations

import pytest
from quart.testing import QuartClient

from appliance.services import Services
from tests.helpers import PNG, file_field


async def test_security_headers_on_every_page(client: QuartClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert r.headers["Server-Timing"].startswith("app;dur=")


async def test_health_and_not_found(client: QuartClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200 and (await r.get_json()) == {"status": "ok"}
    r = await client.get("/shows/424242")
    assert r.status_code == 404
    assert "Page not found" in await r.get_data(as_text=True)
    assert (await client.get("/shows/abc")).status_code == 404
    assert (await client.post("/healthz")).status_code in (400, 405)


@pytest.mark.parametrize(
    "name",
    [
        "../vitrine.sqlite3",
        "..%2Fvitrine.sqlite3",
        "%2e%2e/%2e%2e/etc/passwd",
        "vitrine.sqlite3",
        "x.png",
        ".hidden.png",
    ],
)
async def test_uploads_cannot_escape_their_folder(
    client: QuartClient, services: Services, name: str
) -> None:
    services.uploads.directory.mkdir(parents=True, exist_ok=True)
    r = await client.get(f"/uploads/{name}")
    assert r.status_code == 404


async def test_settings_apply_brand_and_logo(
    client: QuartClient, services: Services, admin: str
) -> None:
    form = {
        "csrf_token": admin,
        "name": "Maison <Lune>",
        "brand_color": "#0B7285",
        "currency": "EUR",
        "language": "fr",
        "timezone": "Europe/Paris",
        "cart_url_template": "https://maison.example/cart/{sku}:{qty}",
    }
    r = await client.post("/admin/settings", form=form, files={"logo": file_field(PNG)})
    assert r.status_code == 302, await r.get_data(as_text=True)
    css = await (await client.get("/brand.css")).get_data(as_text=True)
    assert "--brand: #0b7285;" in css
    home = await (await client.get("/")).get_data(as_text=True)
    assert "Maison &lt;Lune&gt;" in home and '<html lang="fr">' in home
    shop = await services.shop()
    assert shop.logo and f"/uploads/{shop.logo}" in home


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"brand_color": "red; } body { display:none"}, "Enter a colour like #d6336c."),
        ({"currency": "XXXX"}, "Choose one of the offered values."),
        ({"timezone": "Mars/Olympus"}, "Choose one of the offered values."),
        ({"language": "de"}, "Choose one of the offered values."),
        (
            {"cart_url_template": "https://shop.example/cart"},
            "The template must contain {sku} or {items}.",
        ),
        ({"name": ""}, "This field is required."),
    ],
)
async def test_bad_settings_change_nothing(
    client: QuartClient, services: Services, admin: str, changes: dict[str, str], message: str
) -> None:
    form = {
        "csrf_token": admin,
        "name": "Shop",
        "brand_color": "#112233",
        "currency": "EUR",
        "language": "en",
        "timezone": "UTC",
        "cart_url_template": "",
        **changes,
    }
    r = await client.post("/admin/settings", form=form)
    assert r.status_code == 400
    assert message in await r.get_data(as_text=True)
    services.forget_shop()
    assert (await services.shop()).name == "My shop"


async def test_cart_link_template(client: QuartClient, services: Services, admin: str) -> None:
    from appliance.catalog.products import ProductData, create_product
    from appliance.catalog.shows import ShowData, create_show

    r = await client.post(
        "/admin/settings",
        form={
            "csrf_token": admin,
            "name": "S",
            "brand_color": "#112233",
            "currency": "EUR",
            "language": "en",
            "timezone": "UTC",
            "cart_url_template": "https://s.example/cart/{sku}:{qty}",
        },
    )
    assert r.status_code == 302
    a = await create_product(
        services.db,
        ProductData("A", "", "SKU-A", 100, "EUR", "in_stock", "https://s.example/a", ""),
        None,
    )
    b = await create_product(
        services.db,
        ProductData("B", "", "SKU-B", 100, "EUR", "in_stock", "", "https://s.example/add/b"),
        None,
    )
    c = await create_product(
        services.db, ProductData("C", "", "SKU-C", 100, "EUR", "out_of_stock", "", ""), None
    )
    show_id = await create_show(
        services.db, ShowData("S", "", 2_000_000_000, 60, None), product_ids=[a, b, c]
    )
    page = await (await client.get(f"/shows/{show_id}")).get_data(as_text=True)
    # Shop links carry the show, so the shop's sales can be attributed to it.
    tags = f"utm_source=vitrine&amp;utm_campaign=show-{show_id}"
    assert f'href="https://s.example/cart/SKU-A:1?{tags}"' in page
    assert f'href="https://s.example/add/b?{tags}"' in page
    assert "SKU-C:1" not in page and "Sold out" in page


async def test_team_management(client: QuartClient, services: Services, admin: str) -> None:
    from appliance.accounts.users import list_users

    r = await client.post(
        "/admin/users",
        form={
            "csrf_token": admin,
            "name": "Host <b>",
            "email": "h@example.com",
            "role": "host",
            "password": "long enough pw",
        },
    )
    assert r.status_code == 302
    r = await client.post(
        "/admin/users",
        form={
            "csrf_token": admin,
            "name": "Dup",
            "email": "H@example.com",
            "role": "host",
            "password": "long enough pw",
        },
    )
    assert r.status_code == 400 and "already exists" in await r.get_data(as_text=True)
    r = await client.post(
        "/admin/users",
        form={
            "csrf_token": admin,
            "name": "X",
            "email": "x@example.com",
            "role": "owner",
            "password": "long enough pw",
        },
    )
    assert r.status_code == 400
    team = {u.email: u for u in await list_users(services.db)}
    host = team["h@example.com"]
    assert host.role == "host" and host.name == "Host <b>"
    r = await client.post(
        f"/admin/users/{host.id}",
        form={"csrf_token": admin, "name": "Host", "role": "moderator", "active": "on"},
    )
    assert r.status_code == 302
    me = next(u for u in team.values() if u.role == "admin")
    r = await client.post(
        f"/admin/users/{me.id}",
        form={"csrf_token": admin, "name": "Me", "role": "host", "active": "on"},
    )
    assert r.status_code == 400 and "Keep at least one active admin." in await r.get_data(
        as_text=True
    )
    r = await client.post(f"/admin/users/{me.id}/delete", form={"csrf_token": admin})
    assert r.status_code == 400
    r = await client.post(f"/admin/users/{host.id}/delete", form={"csrf_token": admin})
    assert r.status_code == 302
    assert {u.email for u in await list_users(services.db)} == {me.email}
