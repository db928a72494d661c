"""The office's tracking sheets (DESIGN.md §6): what each row says, as CSV text or an XLSX workbook.

Pure: rows are built from the job projection (the row's columns and its `state` JSON) in the
company's time zone, then written as CSV lines or as a workbook; nothing here touches the database.

- The job tracking sheet ("the Excel sheet" of the client engagement workflow): one row per job.
- The logistics order tracking sheet: one row per part line ordered, across jobs.

Times are the company's wall-clock time (communication settings' `timezone`): ISO 8601 with the
offset in CSV; in XLSX date cells (Excel has no zones) whose format prints the zone's name
("2026-06-03 09:00 EDT"). Money is two decimals in CSV (for sums and imports) and a number cell in
XLSX whose format prints the company's currency symbol ("$1,234.50"): people read the workbook,
and its cells stay numbers and dates to sort and add up.

Spreadsheet safety (CSV/formula injection): a text cell that starts with `=`, `+`, `-`, `@`, a tab
or a carriage return may be run as a formula by Excel, LibreOffice or Sheets. In CSV such a cell
gets a leading apostrophe. In XLSX every text cell is written as a string — never a formula — and
these ones also carry Excel's quote prefix, so editing the cell keeps it text. Numbers and dates
are ours (never user text), so a negative balance stays a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from models import display
from models.lifecycle import JobState, Stage
from models.tables import Job

Kind = Literal["text", "int", "money", "datetime", "date", "flag"]
Cell = str | int | Decimal | datetime | date | bool | None
Row = tuple[Cell, ...]

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = "#,##0.00"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
MAX_WIDTH = 60  # text columns widen to their longest value, up to this


@dataclass(frozen=True)
class Column:
    header: str
    kind: Kind
    width: int  # XLSX width in characters; text columns may widen to fit their content


@dataclass(frozen=True)
class Sheet:
    name: str  # the worksheet's name and the file name's stem
    columns: tuple[Column, ...]


JOBS = Sheet(
    "Jobs",
    (
        Column("Job number", "int", 12),
        Column("Slug", "text", 10),
        Column("Title", "text", 24),
        Column("Client", "text", 20),
        Column("Client ID", "int", 11),
        Column("Stage", "text", 12),
        Column("Milestone", "text", 12),
        Column("Owner", "text", 10),
        Column("Technician", "text", 12),
        Column("Priority", "text", 11),
        Column("Created", "datetime", 17),
        Column("Stage entered", "datetime", 17),
        Column("Quote total", "money", 14),
        Column("Contract amount", "money", 18),
        Column("Invoice total", "money", 15),
        Column("Paid", "money", 12),
        Column("Balance", "money", 12),
        Column("Next reminder", "datetime", 17),
        Column("Stuck", "flag", 9),
        Column("Cancel reason", "text", 20),
    ),
)

PARTS = Sheet(
    "Parts orders",
    (
        Column("Job number", "int", 12),
        Column("Slug", "text", 10),
        Column("Client", "text", 20),
        Column("SKU", "text", 10),
        Column("Description", "text", 24),
        Column("Quantity", "int", 10),
        Column("Supplier", "text", 14),
        Column("PO number", "text", 12),
        Column("Ordered at", "datetime", 17),
        Column("Expected delivery", "date", 19),
        Column("Delivered at", "datetime", 17),
        Column("Overdue", "flag", 10),
        Column("Job stage", "text", 12),
    ),
)


# --- rows ------------------------------------------------------------------------------------


def _local(when: datetime | None, zone: ZoneInfo) -> datetime | None:
    return when.astimezone(zone).replace(microsecond=0) if when is not None else None


def job_row(row: Job, zone: ZoneInfo) -> Row:
    """One job as the job tracking sheet has it: the list's columns plus the money."""
    s = JobState.model_validate(row.state)
    due = s.amount_due
    # What is still owed: the invoice (or, before invoicing, the contract) less what was paid. A
    # canceled job owes nothing (it is canceled before completion, so it took no payment).
    balance = due - s.paid_total if due is not None and s.stage != Stage.canceled else None
    return (
        row.number,
        row.slug,
        row.title,
        row.client_name,
        row.client_id,
        row.stage,
        row.milestone,
        row.owner,
        row.assigned_tech,
        row.priority,
        _local(row.created_at, zone),
        _local(row.stage_entered_at, zone),
        s.quote.total if s.quote is not None else None,
        row.contract_amount,
        s.invoice.total if s.invoice is not None else None,
        s.paid_total,
        balance,
        _local(row.next_reminder_at, zone),
        row.stuck,
        s.cancel_reason,
    )


def part_rows(row: Job, zone: ZoneInfo, today: date) -> list[tuple[Row, bool, bool]]:
    """Each part line the job ordered, in order: (row, outstanding, overdue).

    Overdue: not delivered and the expected day is over (before `today`, the company's date) —
    the same end-of-day rule as the parts-overdue reminder. A canceled job's parts are nobody's to
    chase, so they are never overdue.
    """
    s = JobState.model_validate(row.state)
    rows = []
    for part in s.parts:
        line = part.line
        outstanding = part.delivered_at is None
        overdue = outstanding and line.expected_delivery < today and s.stage != Stage.canceled
        cells: Row = (
            row.number,
            row.slug,
            row.client_name,
            line.sku,
            line.description,
            line.quantity,
            line.supplier,
            line.po_number,
            _local(part.ordered_at, zone),
            line.expected_delivery,
            _local(part.delivered_at, zone),
            overdue,
            row.stage,
        )
        rows.append((cells, outstanding, overdue))
    return rows


# --- CSV -------------------------------------------------------------------------------------


def guard(text: str) -> str:
    """Text a spreadsheet will show, never run: formula-looking text gets a leading apostrophe."""
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_cell(value: Cell, kind: Kind) -> str:
    if value is None:
        return ""
    if kind == "flag":
        return "yes" if value else "no"
    if kind == "money":
        assert isinstance(value, Decimal)
        return f"{value:.2f}"
    if kind == "datetime":
        assert isinstance(value, datetime)
        return value.isoformat(timespec="seconds")
    if kind == "date":
        assert isinstance(value, date)
        return value.isoformat()
    if kind == "int":
        return str(value)
    return guard(str(value))


class CsvWriter:
    """CSV lines (RFC 4180, CRLF) for one sheet; `start()` opens with a BOM so Excel reads UTF-8."""

    def __init__(self, sheet: Sheet) -> None:
        self._kinds = [c.kind for c in sheet.columns]
        self._headers = [c.header for c in sheet.columns]
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def _take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text

    def start(self) -> str:
        self._writer.writerow(self._headers)
        return "\ufeff" + self._take()

    def rows(self, rows: Iterable[Row]) -> str:
        for row in rows:
            self._writer.writerow([csv_cell(v, k) for v, k in zip(row, self._kinds, strict=True)])
        return self._take()


# --- XLSX ------------------------------------------------------------------------------------


def _money_format(symbol: str) -> str:
    """The money format with the currency symbol as literal text (quoted, so `$` or `€` or
    `kr` never reads as a format code)."""
    if not symbol:
        return MONEY_FORMAT
    quoted = '"' + symbol.replace('"', "") + '"'
    return f"{quoted}{MONEY_FORMAT};-{quoted}{MONEY_FORMAT}"


def _xlsx_cell(ws: object, value: Cell, kind: Kind, symbol: str = "") -> WriteOnlyCell:
    if kind == "text" and value is not None:
        text = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        cell = WriteOnlyCell(ws, value=text)
        cell.data_type = "s"  # openpyxl makes "=..." a formula; this is text, always
        if text.startswith(FORMULA_TRIGGERS):
            cell.quotePrefix = True
        return cell
    if kind == "flag":
        return WriteOnlyCell(ws, value=None if value is None else ("yes" if value else "no"))
    zone = ""
    if kind == "datetime" and isinstance(value, datetime):
        zone = display.zone_name(value) if value.tzinfo is not None else ""
        value = value.replace(tzinfo=None)  # already the company's wall-clock time
    cell = WriteOnlyCell(ws, value=value)
    if kind == "money":
        cell.number_format = _money_format(symbol)
    elif kind == "datetime":
        # The zone at that moment (EST or EDT), as literal text after the time.
        cell.number_format = f'{DATETIME_FORMAT} "{zone}"' if zone else DATETIME_FORMAT
    elif kind == "date":
        cell.number_format = DATE_FORMAT
    return cell


def _widths(sheet: Sheet, rows: Sequence[Row]) -> list[int]:
    widths = []
    for i, column in enumerate(sheet.columns):
        width = max(column.width, len(column.header) + 4)  # room for the filter button
        if column.kind == "text":
            longest = max((len(str(r[i])) for r in rows if r[i] is not None), default=0)
            width = max(width, min(longest + 2, MAX_WIDTH))
        widths.append(width)
    return widths


def workbook(sheet: Sheet, rows: Sequence[Row], currency_symbol: str = "") -> bytes:
    """One worksheet: a bold header row, frozen, with an autofilter over the data and set widths;
    amounts show `currency_symbol`.

    CPU-bound: call it off the event loop.
    """
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet.name)
    ws.freeze_panes = "A2"
    # Widths go before the first row: a write-only sheet writes its columns ahead of the data.
    for i, width in enumerate(_widths(sheet, rows), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    last = get_column_letter(len(sheet.columns))
    ws.auto_filter.ref = f"A1:{last}{len(rows) + 1}"
    bold = Font(bold=True)
    header = []
    for column in sheet.columns:
        cell = WriteOnlyCell(ws, value=column.header)
        cell.font = bold
        header.append(cell)
    ws.append(header)
    kinds = [c.kind for c in sheet.columns]
    for row in rows:
        ws.append([_xlsx_cell(ws, v, k, currency_symbol) for v, k in zip(row, kinds, strict=True)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
