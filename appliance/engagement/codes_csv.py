"""Single-use codes read from a CSV file exported by the shop (pure: bytes in, codes out).

The column is the one whose header names a code: `Code` (Shopify's discount-code export),
`code`, `coupon code`, `coupon`, `discount code` or `post_title` (WooCommerce coupons,
whose title is the code); otherwise the first column, under a header row when the first
cell is not a code itself. A UTF-8 byte-order mark, quotes, `,`/`;`/tab separators and
blank lines are fine; a code seen twice is kept once and counted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from appliance.engagement.codes import CODE_RE, MAX_CODES

MAX_BYTES = 1024 * 1024  # 10,000 codes of 32 characters with a few more columns
HEADERS = ("code", "discount code", "coupon code", "coupon", "post_title")


class CsvProblem(ValueError):
    """Why a file gives no codes: `reason` is one of empty, not_text, bad_code, too_many."""

    def __init__(self, reason: str, row: int = 0, value: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.row = row
        self.value = value


@dataclass(frozen=True)
class CsvCodes:
    codes: list[str]  # distinct, in the file's order
    duplicates: int
    column: str  # the header of the column read, "" when the file has none


def _text(data: bytes) -> str:
    if b"\x00" in data:
        raise CsvProblem("not_text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # a spreadsheet's own export


def _dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def read_codes_csv(data: bytes, limit: int = MAX_CODES) -> CsvCodes:
    text = _text(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text[:4096]))
    column, header, codes, seen, duplicates = 0, "", [], set(), 0
    first = True
    try:
        for row in reader:
            cells = [c.strip() for c in row]
            if not any(cells):
                continue  # a blank line
            if first:
                first = False
                names = [c.lower() for c in cells]
                found = next((names.index(h) for h in HEADERS if h in names), None)
                if found is not None or not CODE_RE.match(cells[0]):
                    column = found or 0
                    header = cells[column]
                    continue
            code = cells[column] if column < len(cells) else ""
            if not code:
                continue  # a row without a code (a total, a note)
            if not CODE_RE.match(code):
                raise CsvProblem("bad_code", reader.line_num, code[:40])
            if code in seen:
                duplicates += 1
                continue
            seen.add(code)
            codes.append(code)
            if len(codes) > limit:
                raise CsvProblem("too_many", reader.line_num)
    except csv.Error as exc:
        raise CsvProblem("not_text", reader.line_num) from exc
    if not codes:
        raise CsvProblem("empty")
    return CsvCodes(codes, duplicates, header)
