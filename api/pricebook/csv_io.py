"""The price book as CSV: the export's text, and an import file read into rows with the line each
starts on (the rows' rules are models/pricebook.py's).

Export: UTF-8 with a BOM (so Excel reads it as UTF-8), a header row, CRLF lines; text that a
spreadsheet would run as a formula gets a leading apostrophe (api/exports/sheets.guard, the
tracking sheets' rule). Import takes the export back: a leading apostrophe before a formula
character is that guard, and is removed again.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.responses import Response

from api.exports.sheets import FORMULA_TRIGGERS, guard
from api.pricebook.schemas import ItemPublic, TierPricePublic
from models.pricebook import CSV_COLUMNS, TIER_COLUMNS, CsvCheck, Problem, check_rows

# The most an import file may be (the route refuses a larger body unread: 413).
MAX_IMPORT_BYTES = 2 * 1024 * 1024


def export_text(items: list[ItemPublic]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for item in items:
        tiers = {p.tier: p.unit_price for p in item.fixed_prices if isinstance(p, TierPricePublic)}
        writer.writerow(
            [
                guard(item.sku),
                guard(item.name),
                guard(item.description),
                f"{item.unit_price:.2f}",
                "yes" if item.taxable else "no",
                guard(item.category),
                "yes" if item.active else "no",
                *(f"{tiers[tier]:.2f}" if tier in tiers else "" for tier in TIER_COLUMNS.values()),
            ]
        )
    return "\ufeff" + buffer.getvalue()


def csv_response(items: list[ItemPublic]) -> Response:
    """The export as a download (the API's and the page's)."""
    day = datetime.now(UTC).date().isoformat()
    return Response(
        export_text(items),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="jobline-pricebook-{day}.csv"'},
    )


def _unguard(cell: str) -> str:
    if cell.startswith("'") and cell[1:].startswith(FORMULA_TRIGGERS):
        return cell[1:]
    return cell


def read(content: bytes | str) -> CsvCheck:
    """An import file's rows checked, or its problems (each with the file's line, the header
    being line 1)."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = content[: error.start].count(b"\n") + 1
            return CsvCheck(
                problems=[Problem(line, "", "the file is not UTF-8 text; save it as CSV UTF-8")]
            )
    else:
        text = content.removeprefix("\ufeff")
    if not text.strip():
        return CsvCheck(problems=[Problem(1, "", "the file is empty; it needs a header row")])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except csv.Error as error:
        return CsvCheck(problems=[Problem(1, "", f"the header cannot be read as CSV: {error}")])
    records: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            records.append((start, [_unguard(c) for c in cells]))
            start = reader.line_num + 1
    except csv.Error as error:
        return CsvCheck(problems=[Problem(start, "", f"this line cannot be read as CSV: {error}")])
    return check_rows(header, records)
