"""Single-use offer codes imported from the shop's CSV export: the reading of real export
layouts, and the moderation panel's upload (CSRF, access, limits, clear 4xx answers)."""

from __future__ import annotations

import time

import pytest
from quart.typing import TestClientProtocol as QuartClient

from appliance.catalog import shows
from appliance.engagement.codes_csv import MAX_BYTES, CsvProblem, read_codes_csv
from appliance.services import Services
from tests.conftest import sign_in
from tests.helpers import file_field

# Shopify's export of a discount's generated codes, as the admin downloads it.
SHOPIFY = (
    "\ufeffCode,Usage Count,Created At\r\n"
    "LIVE-7QK2,0,2026-11-30 10:02:11 +0100\r\n"
    "LIVE-9XD4,0,2026-11-30 10:02:11 +0100\r\n"
    "\r\n"
    "LIVE-7QK2,0,2026-11-30 10:02:11 +0100\r\n"
    '"LIVE-AB12",1,"2026-11-30 10:02:11 +0100"\r\n'
).encode()

# WooCommerce coupons exported from WordPress (a coupon's title is its code), saved by a
# French spreadsheet: semicolons.
WOOCOMMERCE = (
    "ID;post_title;post_excerpt;discount_type;coupon_amount\n"
    '101;NOEL10;"Noël; 10 %";percent;10\n'
    "102;NOEL11;;percent;10\n"
    "103;noel10;;percent;10\n"
).encode()


def test_shopify_export_bom_quotes_blank_lines_and_duplicates() -> None:
    found = read_codes_csv(SHOPIFY)
    assert found.codes == ["LIVE-7QK2", "LIVE-9XD4", "LIVE-AB12"]
    assert found.duplicates == 1 and found.column == "Code"


def test_woocommerce_export_reads_the_title_column() -> None:
    found = read_codes_csv(WOOCOMMERCE)
    assert found.codes == ["NOEL10", "NOEL11", "noel10"]  # codes are case-sensitive here
    assert found.duplicates == 0 and found.column == "post_title"


def test_a_bare_column_or_an_unknown_header_reads_the_first_column() -> None:
    assert read_codes_csv(b"A1\nA2\nA1\n").codes == ["A1", "A2"]
    assert read_codes_csv(b"Bon de reduction,valeur\nB1,5\nB2,5\n").codes == ["B1", "B2"]
    assert read_codes_csv("Réf\nC1\n".encode("cp1252")).codes == ["C1"]


@pytest.mark.parametrize(
    ("data", "reason", "row"),
    [
        (b"code\nGOOD1\nnot a code\n", "bad_code", 3),
        (b"code\n\n\n", "empty", 0),
        (b"", "empty", 0),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "not_text", 0),
    ],
)
def test_bad_files_are_refused_with_their_reason(data: bytes, reason: str, row: int) -> None:
    with pytest.raises(CsvProblem) as caught:
        read_codes_csv(data)
    assert caught.value.reason == reason and caught.value.row == row


def test_no_more_codes_than_an_offer_takes() -> None:
    data = "\n".join(f"C{i}" for i in range(11)).encode()
    assert len(read_codes_csv(data, limit=11).codes) == 11
    with pytest.raises(CsvProblem) as caught:
        read_codes_csv(data, limit=10)
    assert caught.value.reason == "too_many"


async def new_show(services: Services) -> int:
    data = shows.ShowData("Codes", "", int(time.time()) + 3600, 60, None)
    return await shows.create_show(services.db, data)


async def upload(
    client: QuartClient,
    show_id: int,
    data: bytes,
    token: str | None,
    name: str = "codes.csv",
    have: str = "",
) -> tuple[int, dict]:
    headers = {"X-CSRF-Token": token} if token is not None else {}
    response = await client.post(
        f"/studio/{show_id}/offer-codes",
        files={"file": file_field(data, name, "text/csv")},
        form={"have": have},
        headers=headers,
    )
    try:
        body = await response.get_json()
    except Exception:
        body = None
    return response.status_code, body or {}


async def test_upload_gives_the_codes_and_what_was_skipped(
    client: QuartClient, services: Services
) -> None:
    show_id = await new_show(services)
    token = await sign_in(client, services, "admin")
    status, body = await upload(client, show_id, SHOPIFY, token)
    assert status == 200, body
    assert body["codes"] == ["LIVE-7QK2", "LIVE-9XD4", "LIVE-AB12"]
    assert body["message"] == "3 codes added, 1 duplicate skipped"
    # Codes the form holds already are skipped too.
    status, body = await upload(client, show_id, SHOPIFY, token, have="PASTED\nLIVE-9XD4")
    assert status == 200 and body["codes"] == ["LIVE-7QK2", "LIVE-AB12"]
    assert body["message"] == "2 codes added, 2 duplicates skipped"
    # The moderation panel on the show's page carries the upload and its token.
    page = await (await client.get(f"/admin/shows/{show_id}")).get_data(as_text=True)
    assert f'data-codes-url="/studio/{show_id}/offer-codes"' in page
    assert 'id="offer-codes-file"' in page


async def test_upload_refusals_are_clear_4xx(client: QuartClient, services: Services) -> None:
    show_id = await new_show(services)
    status, _body = await upload(client, show_id, SHOPIFY, None)
    assert status == 400  # no CSRF token: the form has expired
    token = await sign_in(client, services, "admin")
    status, _body = await upload(client, show_id, SHOPIFY, "not-the-token")
    assert status == 400
    status, body = await upload(client, show_id, b"code\nok1\nbad code!\n", token)
    assert status == 400 and "Line 3" in body["error"] and "bad code!" in body["error"]
    status, body = await upload(client, show_id, b"code\n", token)
    assert status == 400 and body["error"] == "This file has no codes."
    status, body = await upload(client, show_id, b"\x00\x01binary", token)
    assert status == 400 and body["error"] == "This is not a CSV file."
    big = b"code\n" + b"A" * 30 + b"\n" + b"x," * (MAX_BYTES // 2)
    status, body = await upload(client, show_id, big, token)
    assert status == 413 and "too large" in body["error"]
    many = ("code\n" + "\n".join(f"K{i}" for i in range(10_001))).encode()
    status, body = await upload(client, show_id, many, token)
    assert status == 400 and "10000" in body["error"].replace(",", "")
    status, _body = await upload(client, 999_999, SHOPIFY, token)
    assert status == 404
    response = await client.post(f"/studio/{show_id}/offer-codes", headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    assert (await response.get_json())["error"] == "Choose a CSV file."


async def test_only_the_shows_team_may_upload(client: QuartClient, services: Services) -> None:
    show_id = await new_show(services)
    token = await sign_in(client, services, "moderator")  # not assigned to this show
    status, _body = await upload(client, show_id, SHOPIFY, token)
    assert status == 403
