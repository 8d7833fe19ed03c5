"""The player on the shop's own site, in-process: which origins may frame the show page
(CSP frame-ancestors, no X-Frame-Options there), the settings, /embed.js and the public JSON
it reads, the ?embed=1 page, and the embed's KPI channel. The browser side is
tests/test_browser_embed.py."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from quart.testing import QuartClient

from appliance.catalog.products import ProductData, create_product
from appliance.catalog.shop import save_shop
from appliance.catalog.shows import ShowData, create_show, go_live
from appliance.config import Config, ConfigError, load_config
from appliance.embed.origins import embeddable_csp, framing_origins, origin_of
from appliance.kpis.events import parse_beacon
from appliance.services import Services

SHOP = "https://shop.example.com"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(
        environ={"VITRINE_EMBED_ALLOWED_ORIGINS": f"{SHOP}, http://localhost:8000/"},
        overrides={"media.workers": "0", "storage.data_dir": str(tmp_path / "data")},
    )


def test_origins_of_the_cart_template_and_the_setting() -> None:
    assert origin_of("https://Shop.Example.com:443/cart/add?id={sku}") == SHOP
    assert origin_of("http://localhost:8000/x") == "http://localhost:8000"
    assert origin_of("/cart/{sku}") is None
    assert origin_of("javascript:alert(1)") is None
    assert origin_of("https://{shop}/cart") is None
    assert framing_origins(" https://b.example , https://a.example", "https://a.example/c") == (
        "https://a.example",
        "https://b.example",
    )
    policy = "default-src 'self'; frame-ancestors 'self'"
    assert embeddable_csp(policy, (SHOP,)) == f"default-src 'self'; frame-ancestors 'self' {SHOP}"


def test_the_setting_is_read_from_the_environment_and_checked() -> None:
    config = load_config(environ={"VITRINE_EMBED_ALLOWED_ORIGINS": SHOP})
    assert config.embed.allowed_origins == SHOP
    with pytest.raises(ConfigError, match=r"embed\.allowed_origins"):
        load_config(environ={"VITRINE_EMBED_ALLOWED_ORIGINS": "https://shop.example.com/page"})
    with pytest.raises(ConfigError, match=r"embed\.allowed_origins"):
        load_config(environ={"VITRINE_EMBED_ALLOWED_ORIGINS": "shop.example.com"})


async def a_show(services: Services, live: bool = False, starts_in: int = 3600) -> int:
    product = await services.db.fetchval("SELECT id FROM products WHERE sku = 'HAT-1'")
    if product is None:
        product = await create_product(
            services.db,
            ProductData("Hat", "", "HAT-1", 1990, "EUR", "in_stock", "", "", variant_id="4411"),
            None,
        )
    show = await create_show(
        services.db,
        ShowData("Spring hats", "", int(time.time()) + starts_in, 60, None),
        product_ids=[product],
    )
    if live:
        await go_live(services.db, show)
    return show


async def test_only_the_show_page_may_be_framed_by_the_listed_origins(
    client: QuartClient, services: Services
) -> None:
    show = await a_show(services)
    r = await client.get(f"/shows/{show}?embed=1")
    csp = r.headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {SHOP} http://localhost:8000" in csp
    assert "X-Frame-Options" not in r.headers
    for path in ("/", "/login", f"/shows/{show}/calendar.ics", "/embed/status.json"):
        other = await client.get(path)
        assert other.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'"), path
        assert other.headers["X-Frame-Options"] == "SAMEORIGIN", path

    # The shop's cart link adds its origin, as soon as the setting is saved.
    shop = await services.shop()
    await save_shop(
        services.db, dataclasses.replace(shop, cart_url_template="https://cart.example/a/{sku}")
    )
    services.forget_shop()
    r = await client.get(f"/shows/{show}")
    assert (
        "frame-ancestors 'self' https://cart.example https://shop.example.com"
        in (r.headers["Content-Security-Policy"])
    )


async def test_without_any_origin_the_show_page_stays_unframeable(
    tmp_path: Path, services: Services
) -> None:
    from appliance.app import create_app

    app = create_app(
        load_config(
            environ={}, overrides={"media.workers": "0", "storage.data_dir": str(tmp_path / "d")}
        )
    )
    async with app.test_app():
        r = await app.test_client().get("/shows/1")
        assert r.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")
        assert r.headers["X-Frame-Options"] == "SAMEORIGIN"


async def test_the_embed_page_has_no_site_chrome_and_loads_the_bridge(
    client: QuartClient, services: Services
) -> None:
    show = await a_show(services)
    page = await (await client.get(f"/shows/{show}?embed=1")).get_data(as_text=True)
    assert 'class="topbar"' not in page
    assert "/static/js/embed_bridge.js" in page
    assert f'name="vitrine-embed-origins" content="{SHOP} http://localhost:8000"' in page
    normal = await (await client.get(f"/shows/{show}")).get_data(as_text=True)
    assert 'class="topbar"' in normal and "embed_bridge" not in normal
    # ?embed=1 on a page that may not be framed changes nothing.
    assert "embed_bridge" not in await (await client.get("/?embed=1")).get_data(as_text=True)


async def test_embed_js_and_the_button_status(client: QuartClient, services: Services) -> None:
    r = await client.get("/embed.js")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/javascript")
    assert "vitrine:add-to-cart" in await r.get_data(as_text=True)

    r = await client.get("/embed/status.json")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert (await r.get_json())["state"] == "none"

    later = await a_show(services, starts_in=3 * 86400)
    body = await (await client.get("/embed/status.json")).get_json()
    assert body["state"] == "next" and body["show"]["id"] == later
    assert body["show"]["calendar"].endswith(f"/shows/{later}/calendar.ics")
    assert body["labels"]["live"] == "Live now"

    live = await a_show(services, live=True)
    body = await (await client.get("/embed/status.json")).get_json()
    assert body["state"] == "live" and body["show"]["id"] == live
    fr = await (
        await client.get("/embed/status.json", headers={"Accept-Language": "fr"})
    ).get_json()
    assert fr["labels"]["live"] != "Live now"


async def test_far_shows_are_not_announced(tmp_path: Path) -> None:
    from appliance.app import create_app

    config = load_config(
        environ={"VITRINE_EMBED_NEXT_WITHIN_HOURS": "24"},
        overrides={"media.workers": "0", "storage.data_dir": str(tmp_path / "d")},
    )
    app = create_app(config)
    async with app.test_app():
        svc: Services = app.extensions["vitrine"]
        await a_show(svc, starts_in=3 * 86400)
        body = await (await app.test_client().get("/embed/status.json")).get_json()
        assert body["state"] == "none"


async def test_products_json_for_the_bridge(client: QuartClient, services: Services) -> None:
    show = await a_show(services)
    body = await (await client.get(f"/embed/shows/{show}/products.json")).get_json()
    (item,) = body["products"]
    assert item["sku"] == "HAT-1" and item["variant_id"] == "4411"
    assert item["price_minor"] == 1990 and item["currency"] == "EUR"
    assert (await client.get("/embed/shows/999/products.json")).status_code == 404


async def test_replays_of_a_product(client: QuartClient, services: Services) -> None:
    assert (await client.get("/embed/replays.json")).status_code == 400
    assert (await client.get("/embed/replays.json?product=" + "x" * 101)).status_code == 400
    show = await a_show(services, starts_in=-7200)
    db = services.db
    product = await db.fetchval("SELECT id FROM products WHERE sku = 'HAT-1'")
    started = time.time() - 7000
    await db.execute("UPDATE shows SET status = 'ended' WHERE id = ?", (show,))
    await db.execute(
        "INSERT INTO show_pins (show_id, product_id, pinned_at, unpinned_at) VALUES (?, ?, ?, ?)",
        (show, product, started + 42.0, started + 60.0),
    )
    now = int(time.time())
    await db.execute(
        "INSERT INTO replays (show_id, status, duration, full_duration, size, width, height, "
        "published, timeline, created_at, updated_at) "
        "VALUES (?, 'ready', 120, 120, 1, 320, 180, 1, ?, ?, ?)",
        (show, json.dumps([[started, 0.0, 120.0]]), now, now),
    )
    for ref in ("HAT-1", "4411"):
        body = await (await client.get(f"/embed/replays.json?product={ref}")).get_json()
        (replay,) = body["replays"]
        assert replay["show_id"] == show and replay["t"] == 42.0
        assert replay["url"].endswith(f"/shows/{show}")
    assert (await (await client.get("/embed/replays.json?product=NOPE")).get_json()) == {
        "replays": []
    }
    await db.execute("UPDATE replays SET published = 0 WHERE show_id = ?", (show,))
    body = await (await client.get("/embed/replays.json?product=HAT-1")).get_json()
    assert body["replays"] == []


def test_the_embed_join_reports_channel_embed_with_the_page_host() -> None:
    beacon = json.dumps(
        {
            "show": 3,
            "kind": "join",
            "props": {"referrer": "https://shop.example.com/p", "embed": "Shop.Example.com"},
        }
    ).encode()
    _show, events = parse_beacon(beacon, "v_abc", "Mozilla", "live.example.com", time.time())
    props = events[0][2]
    assert props["channel"] == "embed" and props["host"] == "shop.example.com"
    bad = beacon.replace(b"Shop.Example.com", b"<script>")
    _show, events = parse_beacon(bad, "v_abc", "Mozilla", "live.example.com", time.time())
    assert events[0][2]["channel"] == "shop.example.com" and "host" not in events[0][2]


async def test_the_viewer_cookie_survives_a_cross_site_frame_over_https(tmp_path: Path) -> None:
    from appliance.app import create_app

    config = load_config(
        environ={"VITRINE_SERVER_PUBLIC_URL": "https://live.example.com"},
        overrides={"media.workers": "0", "storage.data_dir": str(tmp_path / "d")},
    )
    app = create_app(config)
    async with app.test_app():
        show = await a_show(app.extensions["vitrine"])
        client = app.test_client()
        framed = (await client.get(f"/shows/{show}?embed=1")).headers["Set-Cookie"]
        assert "SameSite=None" in framed and "Secure" in framed and "Partitioned" in framed
        plain = (await app.test_client().get(f"/shows/{show}")).headers["Set-Cookie"]
        assert "SameSite=Lax" in plain and "Partitioned" not in plain


async def test_the_settings_page_shows_the_snippet(
    client: QuartClient, services: Services, admin: str
) -> None:
    page = await (await client.get("/admin/settings")).get_data(as_text=True)
    assert "&lt;script src=&#34;http://127.0.0.1:8080/embed.js&#34; async&gt;" in page
    assert f"{SHOP} http://localhost:8000" in page
    assert '<script src="/static/embed.js" async></script>' in page  # the button's preview
