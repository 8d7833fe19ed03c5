from __future__ import annotations

import pytest
from quart.testing import QuartClient

from appliance.catalog import products
from appliance.services import Services
from tests.helpers import PNG, file_field

VALID = {
    "name": "Linen shirt",
    "description": "Washed linen.",
    "sku": "LIN-1",
    "price": "59.90",
    "currency": "EUR",
    "stock_status": "in_stock",
    "product_url": "https://shop.example.com/p/lin-1",
    "cart_url": "",
}


async def post_product(
    client: QuartClient,
    token: str,
    path: str = "/admin/products/new",
    image: bytes | None = None,
    **changes: str,
):
    form = {**VALID, **changes, "csrf_token": token}
    files = {"image": file_field(image)} if image is not None else None
    return await client.post(path, form=form, files=files)


async def test_create_product_with_image(
    client: QuartClient, services: Services, admin: str
) -> None:
    r = await post_product(client, admin, image=PNG)
    assert r.status_code == 302, await r.get_data(as_text=True)
    [p] = await products.list_products(services.db)
    assert (p.name, p.price_minor, p.currency, p.sku) == ("Linen shirt", 5990, "EUR", "LIN-1")
    assert p.image and p.image.endswith(".png")
    served = await client.get(f"/uploads/{p.image}")
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert await served.get_data() == PNG
    listing = await client.get("/admin/products")
    assert "€59.90" in await listing.get_data(as_text=True)


async def test_edit_replace_image_and_delete(
    client: QuartClient, services: Services, admin: str
) -> None:
    await post_product(client, admin, image=PNG)
    [p] = await products.list_products(services.db)
    old_file = services.uploads.directory / p.image
    assert old_file.exists()
    page = await client.get(f"/admin/products/{p.id}")
    assert 'value="59.90"' in await page.get_data(as_text=True)
    r = await post_product(
        client, admin, f"/admin/products/{p.id}", image=PNG, name="Linen shirt II", price="61"
    )
    assert r.status_code == 302
    [p2] = await products.list_products(services.db)
    assert (p2.name, p2.price_minor) == ("Linen shirt II", 6100)
    assert p2.image != p.image and not old_file.exists()
    r = await client.post(f"/admin/products/{p.id}/delete", form={"csrf_token": admin})
    assert r.status_code == 302
    assert await products.list_products(services.db) == []
    assert not (services.uploads.directory / p2.image).exists()
    assert (await client.get(f"/admin/products/{p.id}")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "field_error"),
    [
        ({"name": ""}, "This field is required."),
        ({"name": "x" * 121}, "Keep this under 120 characters."),
        ({"price": "abc"}, "Enter a price like 19.90."),
        ({"price": "-5"}, "Enter a price like 19.90."),
        ({"price": "1.234"}, "Enter a price like 19.90."),
        ({"price": "99999999999999"}, "Enter a price like 19.90."),
        ({"currency": "XYZ1"}, "Enter a three-letter currency code such as EUR."),
        ({"stock_status": "plenty"}, "Choose one of the offered values."),
        ({"product_url": "javascript:alert(1)"}, "Enter a full web address"),
        ({"cart_url": "//evil.example"}, "Enter a full web address"),
    ],
)
async def test_bad_fields_are_refused_whole(
    client: QuartClient, services: Services, admin: str, changes: dict[str, str], field_error: str
) -> None:
    r = await post_product(client, admin, **changes)
    assert r.status_code == 400
    assert field_error in await r.get_data(as_text=True)
    assert await products.list_products(services.db) == []


async def test_bad_images_are_refused(client: QuartClient, services: Services, admin: str) -> None:
    r = await post_product(client, admin, image=b"<svg onload=alert(1)>")
    assert r.status_code == 400
    assert "Upload a JPEG, PNG or WebP image." in await r.get_data(as_text=True)
    services.uploads.max_bytes = 100
    r = await post_product(client, admin, image=PNG + b"\0" * 200)
    assert r.status_code == 400
    assert "Images must be under" in await r.get_data(as_text=True)
    assert await products.list_products(services.db) == []
    assert not services.uploads.directory.exists() or not any(services.uploads.directory.iterdir())


async def test_oversized_request_is_413(
    client: QuartClient, services: Services, admin: str, app
) -> None:
    app.config["MAX_CONTENT_LENGTH"] = 10_000
    r = await post_product(client, admin, image=b"\x89PNG\r\n\x1a\n" + b"\0" * 20_000)
    assert r.status_code == 413
    assert await products.list_products(services.db) == []


async def test_hostile_text_is_stored_as_is_and_escaped(
    client: QuartClient, services: Services, admin: str
) -> None:
    hostile = "<script>alert('x')</script> '; DROP TABLE products; -- ünïcødé 🛍️"
    r = await post_product(client, admin, name=hostile[:120], description=hostile, sku="")
    assert r.status_code == 302
    [p] = await products.list_products(services.db)
    assert p.name == hostile[:120] and p.sku is None
    body = await (await client.get("/admin/products")).get_data(as_text=True)
    assert "<script>alert" not in body
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in body


async def test_duplicate_sku_is_refused(
    client: QuartClient, services: Services, admin: str
) -> None:
    assert (await post_product(client, admin)).status_code == 302
    r = await post_product(client, admin, name="Other")
    assert r.status_code == 400
    assert "Another product already has this SKU." in await r.get_data(as_text=True)
    assert len(await products.list_products(services.db)) == 1


async def test_csv_export_and_import_round_trip(
    client: QuartClient, services: Services, admin: str
) -> None:
    await post_product(client, admin)
    await post_product(client, admin, name='=HYPERLINK("x")', sku="EVIL", price="3")
    export = await client.get("/admin/products/export.csv")
    assert export.headers["Content-Type"].startswith("text/csv")
    text = await export.get_data(as_text=True)
    assert (
        text.splitlines()[0]
        == "sku,name,description,price,currency,stock_status,product_url,cart_url,variant_id"
    )
    assert "'=HYPERLINK" in text, "formula cells must be defused"
    assert "LIN-1,Linen shirt,Washed linen.,59.90,EUR,in_stock" in text
    csv_in = text.replace("59.90", "49.00") + "NEW-1,Wool hat,,12.5,EUR,preorder,,\r\n"
    r = await client.post(
        "/admin/products/import",
        form={"csrf_token": admin},
        files={"file": file_field(csv_in.encode(), "p.csv", "text/csv")},
    )
    assert r.status_code == 200, await r.get_data(as_text=True)
    assert "1 new, 2 updated" in await r.get_data(as_text=True)
    by_sku = {p.sku: p for p in await products.list_products(services.db)}
    assert by_sku["LIN-1"].price_minor == 4900
    assert by_sku["NEW-1"].price_minor == 1250 and by_sku["NEW-1"].stock_status == "preorder"


async def test_csv_import_reports_every_bad_row_and_imports_nothing(
    client: QuartClient, services: Services, admin: str
) -> None:
    rows = (
        "name;price;currency;stock_status;product_url;sku\n"
        "Good one;10,50;EUR;in_stock;https://a.example/x;A\n"
        ";5;EUR;in_stock;;B\n"
        "Bad price;ten;EUR;in_stock;;C\n"
        "Bad url;1;EUR;in_stock;ftp://x;D\n"
        "Dup;1;EUR;in_stock;;A\n"
    )
    r = await client.post(
        "/admin/products/import",
        form={"csrf_token": admin},
        files={"file": file_field(rows.encode(), "p.csv", "text/csv")},
    )
    assert r.status_code == 400
    body = await r.get_data(as_text=True)
    assert "Nothing was imported" in body
    for line, message in [
        (3, "This field is required."),
        (4, "Enter a price like 19.90."),
        (5, "Enter a full web address"),
        (6, "This SKU is already on line 2."),
    ]:
        assert f"<td>{line}</td>" in body and message in body
    assert await products.list_products(services.db) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xfe\x00garbage", "The file is not UTF-8 text."),
        (b"sku,title\nA,B\n", "The header row must name these columns."),
        (b'name,price\n"unclosed,1\n', "Nothing was imported"),
    ],
)
async def test_csv_import_rejects_broken_files(
    client: QuartClient, services: Services, admin: str, payload: bytes, message: str
) -> None:
    r = await client.post(
        "/admin/products/import",
        form={"csrf_token": admin},
        files={"file": file_field(payload, "p.csv", "text/csv")},
    )
    assert r.status_code == 400
    assert message in await r.get_data(as_text=True)
    assert await products.list_products(services.db) == []


async def test_csv_import_without_file_or_too_big(
    client: QuartClient, services: Services, admin: str
) -> None:
    r = await client.post("/admin/products/import", form={"csrf_token": admin})
    assert r.status_code == 400
    assert "Choose a CSV file to import." in await r.get_data(as_text=True)
