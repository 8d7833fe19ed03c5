"""Single-use offer codes imported from the shop's CSV export, for the moderation
panel's offer form: POST /studio/<show>/offer-codes with the file (`file`), the codes the
form holds already (`have`) and the page's CSRF token (X-CSRF-Token). The answer is JSON:
the new codes, how many duplicates were skipped (in the file or already in the form), and
the column read; or a 4xx with an `error` the panel shows as it is."""

from __future__ import annotations

import re

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from appliance.accounts import access
from appliance.engagement.codes import MAX_CODES
from appliance.engagement.codes_csv import MAX_BYTES, CsvProblem, read_codes_csv
from appliance.i18n.translate import _, ngettext
from appliance.services import Services
from appliance.views.web import current_user, staff_required

any_staff = staff_required("admin", "host", "moderator")


def problem_text(problem: CsvProblem) -> str:
    if problem.reason == "bad_code":
        return _(
            "Line %(row)s: “%(code)s” is not a code (letters, digits, - and _, at most 32).",
            row=problem.row,
            code=problem.value,
        )
    if problem.reason == "too_many":
        return _("An offer takes at most %(n)s codes.", n=MAX_CODES)
    if problem.reason == "empty":
        return _("This file has no codes.")
    return _("This is not a CSV file.")


def blueprint(svc: Services) -> Blueprint:
    bp = Blueprint("offer_codes", __name__)
    db = svc.db

    @bp.post("/studio/<int:show_id>/offer-codes")
    @any_staff
    async def import_codes(show_id: int) -> ResponseReturnValue:
        user = current_user()
        show = await access.show_for(db, user, show_id, "view")
        if not await access.may(db, user, "moderate", show):
            return {"error": _("Only the show's team can do that.")}, 403
        if request.content_length is not None and request.content_length > 2 * MAX_BYTES:
            return {"error": _("This file is too large (1 MB at most).")}, 413
        files = await request.files
        upload = files.get("file")
        if upload is None or not upload.filename:
            return {"error": _("Choose a CSV file.")}, 400
        data = upload.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            return {"error": _("This file is too large (1 MB at most).")}, 413
        try:
            found = read_codes_csv(data)
        except CsvProblem as problem:
            return {"error": problem_text(problem)}, 400
        # The codes the form holds already (`have`): not added again, counted as skipped.
        have = set(re.split(r"[\s,;]+", (await request.form).get("have", "")[:MAX_BYTES]))
        codes = [c for c in found.codes if c not in have]
        n, skipped = len(codes), found.duplicates + len(found.codes) - len(codes)
        message = ngettext("%(num)s code added", "%(num)s codes added", n, num=n)
        if skipped:
            message += ", " + ngettext(
                "%(num)s duplicate skipped", "%(num)s duplicates skipped", skipped, num=skipped
            )
        return (
            {
                "codes": codes,
                "duplicates": skipped,
                "column": found.column,
                "message": message,
            },
            200,
            {"Cache-Control": "no-store"},
        )

    return bp
