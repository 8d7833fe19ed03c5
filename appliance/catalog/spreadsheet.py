"""Reading a product from a form or a CSV row, and the catalogue's CSV import/export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from appliance.catalog.products import STOCK_STATUSES, Product, ProductData
from appliance.i18n.forms import Form, format_minor_plain
from appliance.i18n.locales import known_currencies
from appliance.i18n.translate import _

CSV_COLUMNS = (
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "stock_status",
    "product_url",
    "cart_url",
    "variant_id",
)
MAX_ROWS = 5000


def read_product(form: Form, default_currency: str) -> ProductData:
    """Every product field, validated; errors land in `form.errors`."""
    currency = form.raw("currency").strip().upper() or default_currency
    if currency not in set(known_currencies()):
        form.error("currency", _("Enter a three-letter currency code such as EUR."))
        currency = default_currency
    sku = form.text("sku", 64, required=False) or None
    return ProductData(
        name=form.text("name", 120),
        description=form.text("description", 2000, required=False, multiline=True),
        sku=sku,
        price_minor=form.money("price", currency),
        currency=currency,
        stock_status=form.choice("stock_status", STOCK_STATUSES, default="in_stock"),
        product_url=form.url("product_url"),
        cart_url=form.url("cart_url"),
        variant_id=form.text("variant_id", 64, required=False),
    )


def safe_cell(value: str) -> str:
    """A CSV cell a spreadsheet will not run as a formula (one starting with = + - @...)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def export_csv(products: Iterable[Product]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in products:
        writer.writerow(
            [
                safe_cell(p.sku or ""),
                safe_cell(p.name),
                safe_cell(p.description),
                format_minor_plain(p.price_minor, p.currency),
                p.currency,
                p.stock_status,
                safe_cell(p.product_url),
                safe_cell(p.cart_url),
                safe_cell(p.variant_id),
            ]
        )
    return out.getvalue()


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    message: str


def parse_csv(data: bytes, default_currency: str) -> tuple[list[ProductData], list[RowError]]:
    """All rows, or the list of what is wrong with each bad row (line numbers as in a
    spreadsheet, header = line 1)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [RowError(1, "", _("The file is not UTF-8 text. Export it as CSV UTF-8."))]
    dialect: type[csv.Dialect] = csv.excel
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        pass
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in ("name", "price") if c not in header]
    if missing:
        return [], [RowError(1, ", ".join(missing), _("The header row must name these columns."))]
    reader.fieldnames = header
    items: list[ProductData] = []
    errors: list[RowError] = []
    seen_skus: dict[str, int] = {}
    try:
        for index, row in enumerate(reader):
            line = index + 2
            if index >= MAX_ROWS:
                errors.append(
                    RowError(line, "", _("Import at most %(n)s rows at once.", n=MAX_ROWS))
                )
                break
            if None in row:
                errors.append(RowError(line, "", _("This row has more cells than the header.")))
                continue
            values: Mapping[str, str] = {k: (v or "") for k, v in row.items() if k}
            if not any(v.strip() for v in values.values()):
                continue
            form = Form(values)
            item = read_product(form, default_currency)
            if item.sku:
                if item.sku in seen_skus:
                    form.error(
                        "sku", _("This SKU is already on line %(n)s.", n=seen_skus[item.sku])
                    )
                seen_skus[item.sku] = line
            if form.errors:
                errors.extend(RowError(line, f, m) for f, m in form.errors.items())
            else:
                items.append(item)
    except csv.Error as exc:
        errors.append(RowError(reader.line_num, "", _("Broken CSV: %(detail)s", detail=str(exc))))
    return items, errors
