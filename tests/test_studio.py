from __future__ import annotations

from quart.testing import QuartClient

from appliance.accounts.users import create_user
from appliance.catalog import shows
from appliance.services import Services
from tests.conftest import PASSWORD, csrf_of, sign_in, sign_in_as


async def make_show(services: Services, host_id: int | None = None) -> int:
    return await shows.create_show(
        services.db, shows.ShowData("Live", "", 2_000_000_000, 60, host_id)
    )


async def test_studio_page_for_hosts(client: QuartClient, services: Services) -> None:
    host = await create_user(services.db, "host@example.com", "Hana", "host", PASSWORD)
    show_id = await make_show(services, host_id=host.id)
    assert (await client.get(f"/studio/{show_id}")).status_code == 302  # sign in first
    await sign_in_as(client, host.email)
    r = await client.get(f"/studio/{show_id}")
    assert r.status_code == 200
    page = await r.get_data(as_text=True)
    show = await shows.get_show(services.db, show_id)
    assert show.stream_key in page and f'data-whip-url="/whip/{show_id}"' in page
    assert "/static/js/studio.js" in page
    assert (await client.get("/studio/999")).status_code == 404


async def test_other_hosts_are_refused_and_moderators_only_moderate(
    client: QuartClient, services: Services
) -> None:
    other = await create_user(services.db, "other@example.com", "Other", "host", PASSWORD)
    theirs = await make_show(services, host_id=other.id)
    await sign_in(client, services, "host")
    assert (await client.get(f"/studio/{theirs}")).status_code == 403
    client2 = client.app.test_client()
    moderator = await create_user(services.db, "mod@example.com", "Mia", "moderator", PASSWORD)
    await sign_in_as(client2, moderator.email)
    # Moderators of other shows are refused; assigned ones get the moderation panel,
    # without the camera.
    assert (await client2.get(f"/studio/{theirs}")).status_code == 403
    await shows.set_moderators(services.db, theirs, [moderator.id])
    page = await (await client2.get(f"/studio/{theirs}")).get_data(as_text=True)
    assert 'id="moderation"' in page and "studio.js" not in page and 'id="preview"' not in page
    r = await client2.post(f"/studio/{theirs}/end", headers={"X-CSRF-Token": "x"})
    assert r.status_code in (400, 403)


async def test_end_show_needs_csrf_and_ends_it(client: QuartClient, services: Services) -> None:
    show_id = await make_show(services)
    await sign_in(client, services, "admin")
    await shows.go_live(services.db, show_id)
    r = await client.post(f"/studio/{show_id}/end")
    assert r.status_code == 400
    assert (await shows.get_show(services.db, show_id)).status == "live"
    token = await csrf_of(client, "/admin")
    r = await client.post(f"/studio/{show_id}/end", headers={"X-CSRF-Token": token})
    assert r.status_code == 204
    assert (await shows.get_show(services.db, show_id)).status == "ended"
    r = await client.post(f"/studio/{show_id}/end", headers={"X-CSRF-Token": token})
    assert r.status_code == 204


async def test_studio_page_draws_the_line_up_strip_and_the_moderation_sheet(
    client: QuartClient, services: Services
) -> None:
    """The phone studio's overlay: one pin button per product of the line-up, the chat lines,
    the hearts and the sheet that holds the rest of the moderation; moderators get the panel
    alone, and an ended show has no strip."""
    from appliance.catalog.products import ProductData, create_product

    host = await create_user(services.db, "host@example.com", "Hana", "host", PASSWORD)
    ids = [
        await create_product(
            services.db,
            ProductData(name, "", f"SKU-{n}", 1000 + n, "EUR", "in_stock", "", ""),
            None,
        )
        for n, name in enumerate(["Silk scarf", "Straw hat"])
    ]
    show_id = await shows.create_show(
        services.db, shows.ShowData("Live", "", 2_000_000_000, 60, host.id), None, ids
    )
    await sign_in_as(client, host.email)
    page = await (await client.get(f"/studio/{show_id}")).get_data(as_text=True)
    for pid in ids:
        assert f'id="strip-pin-{pid}" data-product-id="{pid}" aria-pressed="false"' in page
    assert 'id="studio-feed"' in page and 'id="studio-hearts"' in page
    assert f'data-room-url="/ws/shows/{show_id}"' in page
    assert 'aria-controls="studio-sheet"' in page and 'id="studio-sheet"' in page
    assert page.index('id="studio-sheet"') < page.index('id="moderation"')
    assert "/static/css/studio.css" in page

    moderator = await create_user(services.db, "mod@example.com", "Mia", "moderator", PASSWORD)
    await shows.set_moderators(services.db, show_id, [moderator.id])
    client2 = client.app.test_client()
    await sign_in_as(client2, moderator.email)
    page = await (await client2.get(f"/studio/{show_id}")).get_data(as_text=True)
    assert 'id="moderation"' in page and "strip-pin" not in page and "studio-sheet" not in page

    await shows.go_live(services.db, show_id)
    await shows.end_show(services.db, show_id)
    page = await (await client.get(f"/studio/{show_id}")).get_data(as_text=True)
    assert "strip-pin" not in page and 'id="studio-feed"' not in page
    assert 'id="studio-tools"' in page  # the moderation stays one tap away after the show
