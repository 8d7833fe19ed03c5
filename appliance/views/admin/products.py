"""Admin: the product catalogue, its images and its CSV import and export."""

from __future__ import annotations

from quart import Blueprint, Response, abort, g, redirect, request
from quart.typing import ResponseReturnValue

from appliance.catalog import products, spreadsheet
from appliance.catalog.products import STOCK_STATUSES
from appliance.i18n.forms import Form, format_minor_plain
from appliance.i18n.translate import _
from appliance.services import Services
from appliance.views.admin.image_field import ImageField
from appliance.views.web import render, staff_required, uploaded_bytes

editors = staff_required("admin", "host")


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("admin_products", __name__, url_prefix="/admin/products")
    db = svc.db

    def form_values(p: products.Product | None) -> dict[str, str]:
        if p is None:
            return {"currency": g.shop.currency, "stock_status": "in_stock"}
        return {
            "name": p.name,
            "description": p.description,
            "sku": p.sku or "",
            "price": format_minor_plain(p.price_minor, p.currency),
            "currency": p.currency,
            "stock_status": p.stock_status,
            "product_url": p.product_url,
            "cart_url": p.cart_url,
            "variant_id": p.variant_id,
        }

    async def editor(
        product: products.Product | None,
        values: dict[str, str],
        errors: dict[str, str],
        status: int,
    ) -> tuple[str, int]:
        return await render(
            "admin/product_form.html",
            status,
            product=product,
            form=values,
            errors=errors,
            statuses=STOCK_STATUSES,
        )

    @bp.get("")
    @editors
    async def index() -> tuple[str, int]:
        return await render("admin/products.html", products=await products.list_products(db))

    @bp.get("/new")
    @editors
    async def new() -> tuple[str, int]:
        return await editor(None, form_values(None), {}, 200)

    @bp.get("/<int:product_id>")
    @editors
    async def edit(product_id: int) -> tuple[str, int]:
        product = await products.get_product(db, product_id)
        if product is None:
            abort(404)
        return await editor(product, form_values(product), {}, 200)

    @bp.post("/new")
    @bp.post("/<int:product_id>")
    @editors
    async def save(product_id: int | None = None) -> ResponseReturnValue:
        product = None
        if product_id is not None:
            product = await products.get_product(db, product_id)
            if product is None:
                abort(404)
        data = await request.form
        form = Form(data)
        item = spreadsheet.read_product(form, g.shop.currency)
        if item.sku and await products.sku_taken(db, item.sku, product_id):
            form.error("sku", _("Another product already has this SKU."))
        image_field = await ImageField.read(
            svc.uploads, form, "image", product.image if product else None
        )
        if form.errors:
            return await editor(product, dict(data), form.errors, 400)
        async with image_field.saving() as image:
            if product is None:
                product_id = await products.create_product(db, item, image)
            else:
                await products.update_product(db, product.id, item, image)
        return redirect(f"/admin/products?saved={product_id}")

    @bp.post("/<int:product_id>/delete")
    @editors
    async def delete(product_id: int) -> ResponseReturnValue:
        product = await products.get_product(db, product_id)
        if product is None:
            abort(404)
        await products.delete_product(db, product_id)
        await svc.uploads.remove(product.image)
        return redirect("/admin/products?deleted=1")

    @bp.get("/export.csv")
    @editors
    async def export() -> ResponseReturnValue:
        body = spreadsheet.export_csv(await products.list_products(db))
        return Response(
            body,
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="vitrine-products.csv"'},
        )

    @bp.get("/import")
    @editors
    async def import_form() -> tuple[str, int]:
        return await render("admin/product_import.html", errors=[], columns=spreadsheet.CSV_COLUMNS)

    @bp.post("/import")
    @editors
    async def import_csv() -> tuple[str, int]:
        data = await uploaded_bytes("file")
        problem = None
        if data is None:
            problem = _("Choose a CSV file to import.")
        elif len(data) > svc.config.limits.max_csv_bytes:
            problem = _(
                "CSV files must be under %(mb)s MB.",
                mb=round(svc.config.limits.max_csv_bytes / 1_000_000, 1),
            )
        if problem is not None or data is None:
            return await render(
                "admin/product_import.html",
                400,
                errors=[],
                problem=problem,
                columns=spreadsheet.CSV_COLUMNS,
            )
        items, errors = spreadsheet.parse_csv(data, g.shop.currency)
        if errors:
            return await render(
                "admin/product_import.html",
                400,
                errors=errors,
                columns=spreadsheet.CSV_COLUMNS,
                problem=_("Nothing was imported: fix these rows and import the file again."),
            )
        created, updated = await products.upsert_many(db, items)
        return await render(
            "admin/product_import.html",
            errors=[],
            columns=spreadsheet.CSV_COLUMNS,
            created=created,
            updated=updated,
        )

    return bp
