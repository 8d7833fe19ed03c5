"""The in-show cart's checkout: links per platform (pure), the endpoint the page asks,
the shop's platform setting and the products' variant id (form and CSV)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from quart.testing import QuartClient

from appliance.cart.checkout import BadCart, Item, Line, handoffs, parse_discount, parse_items
from appliance.catalog.products import ProductData, create_product, get_product
from appliance.catalog.shows import ShowData, create_show
from appliance.services import Services

VIEWER = "v-0123456789abcdef"


def item(product: int, qty: int, variant: str = "", sku: str = "", page: str = "") -> Item:
    return Item(product, qty, variant or sku, variant, "", page)


def tags(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def test_shopify_one_permalink_keeps_every_item() -> None:
    items = [item(1, 2, "40001"), item(2, 1, "40002")]
    links = handoffs("shopify", "https://shop.example/cart/{sku}:{qty}", items, 7, VIEWER)
    assert len(links) == 1
    url = links[0].url
    assert url.startswith("https://shop.example/cart/40001:2,40002:1?")
    assert tags(url) == {
        "utm_source": ["vitrine"],
        "utm_campaign": ["show-7"],
        "vitrine_v": [VIEWER],
    }
    assert links[0].products == (1, 2)


def test_shopify_item_without_variant_falls_back_to_its_own_link() -> None:
    items = [item(1, 1, "40001"), item(2, 3, page="https://shop.example/p/2")]
    items.append(Item(3, 1, "", "", "https://shop.example/own/3", ""))
    links = handoffs("shopify", "https://shop.example/cart/{sku}:{qty}", items, 7)
    assert [h.products for h in links] == [(1,), (2,), (3,)]
    assert links[0].url.startswith("https://shop.example/cart/40001:1?")
    assert links[1].url.startswith("https://shop.example/p/2?utm_source=vitrine")
    assert links[2].url.startswith("https://shop.example/own/3?utm_source=vitrine")
    assert "vitrine_v" not in links[1].url  # no viewer id, none sent


def test_woocommerce_one_item_per_handoff() -> None:
    template = "https://woo.example/?add-to-cart={sku}&quantity={qty}"
    items = [item(1, 2, "501"), item(2, 1, sku="SKU 2/b")]
    links = handoffs("woocommerce", template, items, 9, VIEWER)
    assert len(links) == 2
    first, second = (tags(h.url) for h in links)
    assert first["add-to-cart"] == ["501"] and first["quantity"] == ["2"]
    assert second["add-to-cart"] == ["SKU 2/b"] and second["quantity"] == ["1"]
    assert first["utm_campaign"] == ["show-9"] and second["vitrine_v"] == [VIEWER]


def test_custom_template_with_items_and_with_sku() -> None:
    whole = handoffs(
        "custom",
        "https://c.example/basket?add={items}&utm_source=old",
        [item(1, 2, "A:1"), item(2, 1, sku="B")],
        3,
        VIEWER,
    )
    assert len(whole) == 1
    query = tags(whole[0].url)
    # A ref's own ':' is escaped, so the shop tells it from the quantity's.
    assert "?add=A%3A1:2,B:1&" in whole[0].url
    assert query["utm_source"] == ["vitrine"]  # the template's own utm_source is replaced
    each = handoffs("custom", "https://c.example/cart/{sku}:{qty}", [item(1, 2, "A")], 3)
    assert each[0].url.startswith("https://c.example/cart/A:2?")


def test_unknown_platform_is_refused() -> None:
    with pytest.raises(ValueError):
        handoffs("magento", "", [], 1)


@pytest.mark.parametrize(
    "raw", ["", "1", "1:0", "1:100", "x:1", "1:1,", "-1:2", "0:1", "1:1;2:2", "9" * 20 + ":1"]
)
def test_bad_items_are_refused(raw: str) -> None:
    with pytest.raises(BadCart):
        parse_items(raw)


def test_items_add_up() -> None:
    assert parse_items("3:2,5:1,3:1") == [Line(3, 3), Line(5, 1)]
    with pytest.raises(BadCart):
        parse_items(",".join(f"{n}:1" for n in range(1, 60)))


async def save_settings(client: QuartClient, admin: str, platform: str, template: str) -> int:
    r = await client.post(
        "/admin/settings",
        form={
            "csrf_token": admin,
            "name": "S",
            "brand_color": "#112233",
            "currency": "EUR",
            "language": "en",
            "timezone": "UTC",
            "cart_url_template": template,
            "cart_platform": platform,
        },
    )
    return r.status_code


async def make_show(services: Services) -> tuple[int, int, int, int]:
    a = await create_product(
        services.db,
        ProductData(
            "A", "", "SKU-A", 1250, "EUR", "in_stock", "https://s.example/a", "", variant_id="4001"
        ),
        None,
    )
    b = await create_product(
        services.db,
        ProductData(
            "B", "", "SKU-B", 500, "EUR", "in_stock", "https://s.example/b", "", variant_id="4002"
        ),
        None,
    )
    c = await create_product(
        services.db,
        ProductData("C", "", "SKU-C", 900, "EUR", "out_of_stock", "", "", variant_id="4003"),
        None,
    )
    show = await create_show(
        services.db, ShowData("S", "", 2_000_000_000, 60, None), product_ids=[a, b, c]
    )
    return show, a, b, c


async def test_checkout_endpoint_by_platform(
    client: QuartClient, services: Services, admin: str
) -> None:
    show, a, b, c = await make_show(services)
    other = await create_product(
        services.db, ProductData("X", "", "SKU-X", 1, "EUR", "in_stock", "", ""), None
    )
    assert (
        await save_settings(client, admin, "shopify", "https://s.example/cart/{sku}:{qty}") == 302
    )
    await client.get(f"/shows/{show}")  # sets the viewer cookie, sent as vitrine_v
    r = await client.get(f"/api/shows/{show}/checkout?items={a}:2,{b}:1,{c}:1,{other}:5,999:1")
    assert r.status_code == 200
    body = await r.get_json()
    assert body["platform"] == "shopify"
    # The sold-out product and an unknown one are left out; prices are the catalogue's. A
    # product of another show stays (the cart is the shop's): with no variant id, its link.
    assert body["items"] == [
        {"product": a, "quantity": 2},
        {"product": b, "quantity": 1},
        {"product": other, "quantity": 5},
    ]
    assert body["total_minor"] == 2 * 1250 + 500 + 5 and body["currency"] == "EUR"
    assert "30.05" in body["total"]
    link, own = body["links"]
    assert link["url"].startswith("https://s.example/cart/4001:2,4002:1?")
    assert own["url"].startswith("https://s.example/cart/SKU-X:5?")  # the template, by SKU
    query = tags(link["url"])
    assert query["utm_campaign"] == [f"show-{show}"] and len(query["vitrine_v"][0]) >= 16

    template = "https://s.example/?add-to-cart={sku}&quantity={qty}"
    assert await save_settings(client, admin, "woocommerce", template) == 302
    body = await (await client.get(f"/api/shows/{show}/checkout?items={a}:2,{b}:1")).get_json()
    assert [tags(x["url"])["add-to-cart"] for x in body["links"]] == [["4001"], ["4002"]]

    template = "https://s.example/basket?items={items}"
    assert await save_settings(client, admin, "custom", template) == 302
    body = await (await client.get(f"/api/shows/{show}/checkout?items={a}:2,{b}:1")).get_json()
    assert [tags(x["url"])["items"] for x in body["links"]] == [["4001:2,4002:1"]]

    assert (await client.get(f"/api/shows/{show}/checkout?items=nope")).status_code == 400
    assert (await client.get("/api/shows/424242/checkout?items=1:1")).status_code == 404
    assert await save_settings(client, admin, "magento", template) == 400


async def test_variant_id_in_form_and_csv(
    client: QuartClient, services: Services, admin: str
) -> None:
    r = await client.post(
        "/admin/products/new",
        form={
            "csrf_token": admin,
            "name": "Scarf",
            "price": "12.50",
            "currency": "EUR",
            "stock_status": "in_stock",
            "variant_id": "39912345",
        },
    )
    assert r.status_code == 302
    product_id = int(r.headers["Location"].split("saved=")[1])
    product = await get_product(services.db, product_id)
    assert product is not None and product.variant_id == "39912345"
    page = await (await client.get(f"/admin/products/{product_id}")).get_data(as_text=True)
    assert 'value="39912345"' in page
    csv_text = await (await client.get("/admin/products/export.csv")).get_data(as_text=True)
    header, row = csv_text.splitlines()[:2]
    assert header.endswith(",variant_id") and row.endswith(",39912345")


def test_csv_import_reads_variant_id() -> None:
    from appliance.catalog.spreadsheet import parse_csv

    data = b"sku,name,price,variant_id\nSCF,Scarf,12.50,39912345\nTOT,Tote,20,\n"
    items, errors = parse_csv(data, "EUR")
    assert errors == []
    assert [(i.sku, i.variant_id) for i in items] == [("SCF", "39912345"), ("TOT", "")]


def test_shopify_discount_link_applies_the_code_then_fills_the_cart() -> None:
    items = [item(1, 2, "4001"), item(2, 1, "4002"), item(3, 1, sku="NOVAR")]
    template = "https://shop.example/cart/{sku}:{qty}"
    whole, own = handoffs("shopify", template, items, 7, VIEWER, discount="LIVE-7QK2")
    parts = urlsplit(whole.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://shop.example/discount/LIVE-7QK2"
    )
    (redirect,) = parse_qs(parts.query)["redirect"]
    # The shop keeps only the redirect: the attribution travels inside it.
    assert redirect.startswith("/cart/4001:2,4002:1?")
    assert tags(redirect)["utm_campaign"] == ["show-7"]
    assert tags(redirect)["vitrine_v"] == [VIEWER]
    assert whole.products == (1, 2)
    assert own.url.startswith("https://shop.example/cart/NOVAR:1?")  # no discount there
    # Without a code, the plain permalink as before.
    (plain, _own) = handoffs("shopify", template, items, 7, VIEWER)
    assert plain.url.startswith("https://shop.example/cart/4001:2,4002:1?utm_source=vitrine")


def test_custom_template_places_the_discount_and_woocommerce_links_stay() -> None:
    template = "https://c.example/basket?items={items}&promo={discount}"
    (link,) = handoffs("custom", template, [item(1, 2, sku="A")], 3, discount="NOEL10")
    assert tags(link.url)["promo"] == ["NOEL10"] and tags(link.url)["items"] == ["A:2"]
    (bare,) = handoffs("custom", template, [item(1, 2, sku="A")], 3)
    assert "{discount}" not in bare.url and "promo" not in tags(bare.url)
    woo = "https://w.example/?add-to-cart={sku}&quantity={qty}"
    (one,) = handoffs("woocommerce", woo, [item(1, 1, sku="9")], 3, discount="NOEL10")
    assert "NOEL10" not in one.url  # WooCommerce takes no coupon in a link


@pytest.mark.parametrize("raw", ["has space", "x" * 33, "é", "A&B", "/discount/"])
def test_bad_discount_codes_are_refused(raw: str) -> None:
    with pytest.raises(BadCart):
        parse_discount(raw)


async def test_checkout_endpoint_applies_the_viewers_code_on_shopify(
    client: QuartClient, services: Services, admin: str
) -> None:
    show, a, b, _c = await make_show(services)
    template = "https://s.example/cart/{sku}:{qty}"
    assert await save_settings(client, admin, "shopify", template) == 302
    url = f"/api/shows/{show}/checkout?items={a}:2,{b}:1&discount=LIVE10"
    body = await (await client.get(url)).get_json()
    (link,) = body["links"]
    assert link["url"].startswith("https://s.example/discount/LIVE10?redirect=/cart/4001:2,4002:1")
    bad = await client.get(f"/api/shows/{show}/checkout?items={a}:1&discount=not%20a%20code")
    assert bad.status_code == 400
    assert "discount" in (await bad.get_json())["error"]
