"""Admin: the shop's name, logo, brand colour, currency, language, time zone, cart links,
and sales reporting (the signing secret, whether unsigned orders count)."""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from zoneinfo import available_timezones

from quart import Blueprint, g, redirect, request
from quart.typing import ResponseReturnValue

from appliance.cart.checkout import PLATFORMS
from appliance.catalog.shop import Shop, save_shop
from appliance.i18n.forms import Form
from appliance.i18n.locales import LANGUAGES, known_currencies
from appliance.i18n.translate import _
from appliance.kpis import conversions
from appliance.services import Services
from appliance.views.admin.image_field import ImageField
from appliance.views.web import admin_required, render

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("admin_settings", __name__, url_prefix="/admin/settings")
    zones = sorted(available_timezones())

    snippet = f"{svc.config.base_url}/static/js/vitrine-shop.js"

    async def page(
        values: dict[str, str], errors: dict[str, str], status: int = 200
    ) -> tuple[str, int]:
        return await render(
            "admin/settings.html",
            status,
            form=values,
            errors=errors,
            languages=LANGUAGES,
            currencies=list(known_currencies()),
            zones=zones,
            conversions_url=f"{svc.config.base_url}/api/conversions",
            conversion_secret=await conversions.get_secret(svc.db),
            snippet_tag=f'<script src="{snippet}" async></script>',
        )

    @bp.get("")
    @admin_required
    async def index() -> tuple[str, int]:
        return await page({k: str(v or "") for k, v in asdict(g.shop).items()}, {})

    @bp.post("")
    @admin_required
    async def save() -> ResponseReturnValue:
        data = await request.form
        form = Form(data)
        name = form.text("name", 80)
        color = form.raw("brand_color").strip()
        if not COLOR_RE.match(color):
            form.error("brand_color", _("Enter a colour like #d6336c."))
        currency = form.choice("currency", known_currencies())
        language = form.choice("language", LANGUAGES)
        timezone = form.choice("timezone", zones)
        template = form.url("cart_url_template")
        platform = form.choice("cart_platform", PLATFORMS, default="custom")
        if template and "{sku}" not in template and "{items}" not in template:
            form.error("cart_url_template", _("The template must contain {sku} or {items}."))
        shop: Shop = g.shop
        logo_field = await ImageField.read(svc.uploads, form, "logo", shop.logo)
        if form.errors:
            return await page(dict(data), form.errors, 400)
        async with logo_field.saving() as logo:
            updated = replace(
                shop,
                name=name,
                brand_color=color.lower(),
                currency=currency,
                language=language,
                timezone=timezone,
                cart_url_template=template,
                cart_platform=platform,
                logo=logo,
            )
            await save_shop(svc.db, updated)
        svc.forget_shop()
        return redirect("/admin/settings?saved=1")

    @bp.post("/sales")
    @admin_required
    async def sales() -> ResponseReturnValue:
        form = Form(await request.form)
        shop: Shop = g.shop
        await save_shop(
            svc.db, replace(shop, count_unsigned_orders=form.checkbox("count_unsigned"))
        )
        svc.forget_shop()
        return redirect("/admin/settings?saved=1#sales")

    @bp.post("/conversion-secret")
    @admin_required
    async def rotate_secret() -> ResponseReturnValue:
        await conversions.rotate_secret(svc.db)
        return redirect("/admin/settings#sales")

    return bp
