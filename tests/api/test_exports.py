"""The office's tracking sheets as CSV and XLSX (DESIGN.md §6, issue 4 item 6), on both databases.

A handful of jobs is driven through the API once per backend: a lead, one waiting on parts (one
line delivered, one past due, one not yet due), one closed after two payments and one canceled
with parts on order and a title that is a spreadsheet formula. Each sheet is downloaded, parsed
(`csv`, `openpyxl.load_workbook`) and compared row by row, value by value.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import secrets
import string
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlmodel import col, select

from api.exports import routes as export_routes
from api.exports import service as exports
from api.exports.sheets import csv_cell, guard
from models import display
from models.tables import User
from tests.api.journeys import CHECKLIST, drive, window
from tests.conftest import Stack

EXPORTS = "/api/v1/exports"
COMMS = "/api/v1/settings/communications"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PATHS = ("jobs.csv", "jobs.xlsx", "parts.csv", "parts.xlsx")
JOB_HEADER = [
    "Job number",
    "Slug",
    "Title",
    "Client",
    "Client ID",
    "Stage",
    "Milestone",
    "Owner",
    "Technician",
    "Priority",
    "Created",
    "Stage entered",
    "Quote total",
    "Contract amount",
    "Invoice total",
    "Paid",
    "Balance",
    "Next reminder",
    "Stuck",
    "Cancel reason",
]
PART_HEADER = [
    "Job number",
    "Slug",
    "Client",
    "SKU",
    "Description",
    "Quantity",
    "Supplier",
    "PO number",
    "Ordered at",
    "Expected delivery",
    "Delivered at",
    "Overdue",
    "Job stage",
]
EVIDENCE = {
    k: True for k in ("documents", "notes", "parts_usage", "photos", "customer_communication")
}
CANCEL_REASON = "-2 weeks late; customer went elsewhere"
DDE = "=cmd|' /C calc'!A0"


def _part(sku: str, description: str, quantity: int, supplier: str, po: str, day: str) -> dict:
    return {
        "sku": sku,
        "description": description,
        "quantity": quantity,
        "supplier": supplier,
        "po_number": po,
        "expected_delivery": day,
    }


async def _settled(stack: Stack, slug: str) -> dict:
    """The job once no reminder is due soon (a past-due part is reminded about at once)."""
    soon = datetime.now(UTC) + timedelta(hours=1)
    for _ in range(100):
        job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        upcoming = job["next_reminder_at"]
        if upcoming is None or datetime.fromisoformat(upcoming) > soon:
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {slug} kept a reminder due: {job['next_reminder_at']}")


@dataclass
class Jobs:
    tag: str
    client_a: dict
    client_b: dict
    lead: dict
    parts: dict
    closed: dict
    canceled: dict

    @property
    def in_order(self) -> list[dict]:
        return [self.lead, self.parts, self.closed, self.canceled]


@pytest.fixture(scope="module")
async def jobs(stack: Stack) -> Jobs:
    # Letters only: a search for a job number must not also match the titles by this tag.
    tag = "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))
    client_a = await stack.new_client(name=f"Acme Cooling Zoë {tag}")
    client_b = await stack.new_client(name=f"@Home Services {tag}")

    lead = await stack.new_job("sam", client_id=client_b["id"], title=f"Lead only {tag}")

    parts = await stack.new_job("sam", client_id=client_a["id"], title=f"Rooftop unit {tag}")
    quote = {
        "lines": [
            {"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"},
            {"description": "Labour", "quantity": "2.5", "unit_price": "95.00"},
        ]
    }
    await drive(
        stack,
        parts["slug"],
        [
            ("sam", "lead_qualified", {}),
            ("sam", "quote_drafted", quote),
            ("sam", "quote_sent", {}),
            ("olga", "quote_approved", {}),
            (
                "olga",
                "parts_ordered",
                {
                    "parts": [
                        _part("FAN-1", "Fan motor", 1, "Ferguson", "PO-77", "2020-01-02"),
                        _part("CAP-45", "Capacitor", 2, "Grainger", "PO-78", "2020-01-01"),
                        _part("BELT-9", "Drive belt", 3, "Ferguson", "PO-77", "2099-12-31"),
                    ]
                },
            ),
            ("olga", "parts_delivered", {"skus": ["FAN-1"]}),
        ],
    )

    closed = await stack.new_job(
        client_id=client_b["id"], title=f"Boiler out {tag}", priority="emergency"
    )
    await drive(
        stack,
        closed["slug"],
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tess", **window()}),
            ("olga", "checklist_completed", CHECKLIST),
            ("tess", "tech_dispatched", {}),
            ("tess", "tech_checked_in", {}),
            ("tess", "job_completed", {"work_performed": "Relit the boiler"}),
            (
                "olga",
                "invoice_sent",
                {
                    "lines": [
                        {"description": "Emergency call-out", "quantity": "1", "unit_price": "250"}
                    ]
                },
            ),
            ("olga", "payment_recorded", {"amount": "100.00", "method": "card"}),
            ("mia", "evidence_verified", EVIDENCE),
            ("olga", "payment_recorded", {"amount": "150.00", "method": "check"}),
        ],
    )

    canceled = await stack.new_job(client_id=client_a["id"], title=f'=HYPERLINK("http://x/{tag}")')
    await drive(
        stack,
        canceled["slug"],
        [
            ("olga", "owner_assigned", {"owner": "olga"}),
            ("olga", "lead_qualified", {}),
            (
                "olga",
                "quote_drafted",
                {"lines": [{"description": "Valve", "quantity": "1", "unit_price": "180.00"}]},
            ),
            ("olga", "quote_sent", {}),
            ("olga", "quote_approved", {}),
            (
                "olga",
                "parts_ordered",
                {"parts": [_part("VALVE-2", DDE, 1, "+Grainger", "@PO-1", "2020-01-01")]},
            ),
            ("mia", "job_canceled", {"reason": CANCEL_REASON}),
        ],
    )
    return Jobs(
        tag=tag,
        client_a=client_a,
        client_b=client_b,
        lead=await _settled(stack, lead["slug"]),
        parts=await _settled(stack, parts["slug"]),
        closed=await _settled(stack, closed["slug"]),
        canceled=await _settled(stack, canceled["slug"]),
    )


# --- downloading and reading ------------------------------------------------------------------


async def _download(stack: Stack, path: str, username: str = "olga", **params: Any) -> bytes:
    response = await stack.get(username, f"{EXPORTS}/{path}", params=params)
    assert response.status_code == 200, response.text
    return response.content


def _csv(content: bytes) -> list[list[str]]:
    assert content.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def _sheet(content: bytes) -> Any:
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert len(book.worksheets) == 1
    return book.worksheets[0]


def _values(sheet: Any) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


# --- what the sheets should say ---------------------------------------------------------------


def _when(value: str | None, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(zone).replace(microsecond=0)


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _job_truth(jobs: Jobs, zone: ZoneInfo) -> list[list[Any]]:
    """Each job's row as typed values; the job views give the times the workflow chose."""
    lead, parts, closed, canceled = jobs.in_order
    a, b = jobs.client_a, jobs.client_b

    def times(job: dict) -> list[Any]:
        return [_when(job["created_at"], zone), _when(job["stage_entered_at"], zone)]

    return [
        [None, lead["slug"], f"Lead only {jobs.tag}", b["name"], b["id"], "lead", "Lead", "sam"]
        + [None, "standard", *times(lead), None, None, None, Decimal("0.00"), None]
        + [_when(lead["next_reminder_at"], zone), False, None],
        [parts["number"], parts["slug"], f"Rooftop unit {jobs.tag}", a["name"], a["id"]]
        + ["awaiting_parts", "Approved", "sam", None, "standard", *times(parts)]
        + [Decimal("657.50"), Decimal("657.50"), None, Decimal("0.00"), Decimal("657.50")]
        + [_when(parts["next_reminder_at"], zone), False, None],
        [closed["number"], closed["slug"], f"Boiler out {jobs.tag}", b["name"], b["id"]]
        + ["closed", "Closed", None, "tess", "emergency", *times(closed)]
        + [None, None, Decimal("250.00"), Decimal("250.00"), Decimal("0.00"), None, False, None],
        [canceled["number"], canceled["slug"], f'=HYPERLINK("http://x/{jobs.tag}")', a["name"]]
        + [a["id"], "canceled", "Canceled", "olga", None, "standard", *times(canceled)]
        + [Decimal("180.00"), Decimal("180.00"), None, Decimal("0.00"), None, None, False]
        + [CANCEL_REASON],
    ]


def _part_truth(jobs: Jobs, zone: ZoneInfo) -> list[list[Any]]:
    a = jobs.client_a
    parts, canceled = jobs.parts, jobs.canceled
    ordered = {p["line"]["sku"]: p for p in parts["parts"] + canceled["parts"]}

    def row(job: dict, sku: str, expected: date, overdue: bool) -> list[Any]:
        part = ordered[sku]
        line = part["line"]
        return [
            job["number"],
            job["slug"],
            a["name"],
            sku,
            line["description"],
            line["quantity"],
            line["supplier"],
            line["po_number"],
            _when(part["ordered_at"], zone),
            expected,
            _when(part["delivered_at"], zone),
            overdue,
            job["stage"],
        ]

    assert ordered["FAN-1"]["delivered_at"] is not None
    assert ordered["CAP-45"]["delivered_at"] is None
    return [
        row(parts, "FAN-1", date(2020, 1, 2), False),  # late, but here
        row(parts, "CAP-45", date(2020, 1, 1), True),  # late and not here
        row(parts, "BELT-9", date(2099, 12, 31), False),  # not due yet
        row(canceled, "VALVE-2", date(2020, 1, 1), False),  # nobody's to chase: job canceled
    ]


KINDS_JOBS = ["int", "text", "text", "text", "int", "text", "text", "text", "text", "text"] + [
    "datetime",
    "datetime",
    "money",
    "money",
    "money",
    "money",
    "money",
    "datetime",
    "flag",
    "text",
]
KINDS_PARTS = ["int", "text", "text", "text", "text", "int", "text", "text"] + [
    "datetime",
    "date",
    "datetime",
    "flag",
    "text",
]


def _as_csv(truth: list[list[Any]], kinds: list[str]) -> list[list[str]]:
    """What the CSV holds for typed values: plain conversions, written out here on purpose."""
    out = []
    for row in truth:
        cells = []
        for value, kind in zip(row, kinds, strict=True):
            if value is None:
                cells.append("")
            elif kind == "flag":
                cells.append("yes" if value else "no")
            elif kind == "money":
                cells.append(f"{value:.2f}")
            elif kind in ("datetime", "date"):
                cells.append(value.isoformat())
            else:
                cells.append(str(value))
        out.append(cells)
    return out


def _as_xlsx(truth: list[list[Any]], kinds: list[str]) -> list[list[Any]]:
    """What openpyxl reads back: numbers as numbers, dates as (naive, local) datetimes."""
    out = []
    for row in truth:
        cells: list[Any] = []
        for value, kind in zip(row, kinds, strict=True):
            if value is None:
                cells.append(None)
            elif kind == "flag":
                cells.append("yes" if value else "no")
            elif kind == "money":
                cells.append(float(value))
            elif kind == "datetime":
                cells.append(value.replace(tzinfo=None))
            elif kind == "date":
                cells.append(datetime.combine(value, datetime.min.time()))
            else:
                cells.append(value)
        out.append(cells)
    return out


async def _zone(stack: Stack) -> ZoneInfo:
    return ZoneInfo((await stack.get("olga", COMMS)).json()["timezone"])


# --- the job tracking sheet -------------------------------------------------------------------


async def test_jobs_csv_has_one_exact_row_per_job(stack: Stack, jobs: Jobs) -> None:
    response = await stack.get("olga", f"{EXPORTS}/jobs.csv", params={"q": jobs.tag})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="jobline-jobs-')
    assert disposition.endswith('.csv"')
    assert b"\r\n" in response.content  # RFC 4180 line ends

    rows = _csv(response.content)
    expected = _as_csv(_job_truth(jobs, await _zone(stack)), KINDS_JOBS)
    # Spreadsheet safety: the formula title and the cancel reason come out as inert text.
    expected[3][2] = f'\'=HYPERLINK("http://x/{jobs.tag}")'
    expected[3][19] = "'" + CANCEL_REASON
    expected[0][3] = expected[2][3] = f"'@Home Services {jobs.tag}"  # the client starts with @
    assert rows[0] == JOB_HEADER
    assert rows[1:] == expected


async def test_jobs_xlsx_has_typed_cells_frozen_header_and_filter(stack: Stack, jobs: Jobs) -> None:
    response = await stack.get("mia", f"{EXPORTS}/jobs.xlsx", params={"q": jobs.tag})
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].endswith('.xlsx"')
    sheet = _sheet(response.content)

    assert sheet.title == "Jobs"
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:T5"
    assert _values(sheet)[0] == JOB_HEADER
    assert all(cell.font.bold for cell in sheet[1])
    for i, header in enumerate(JOB_HEADER, start=1):
        width = sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width
        assert width >= len(header), (header, width)
    assert _values(sheet)[1:] == _as_xlsx(_job_truth(jobs, await _zone(stack)), KINDS_JOBS)

    parts_row = sheet[3]
    # Dates and numbers, printed with the zone's name and the currency symbol.
    zone = display.zone_name(datetime.now(await _zone(stack)))  # the jobs are minutes old
    assert parts_row[10].is_date
    assert parts_row[10].number_format == f'yyyy-mm-dd hh:mm "{zone}"'
    assert parts_row[12].data_type == "n"
    assert parts_row[12].number_format == '"$"#,##0.00;-"$"#,##0.00'
    assert isinstance(parts_row[0].value, int) and isinstance(parts_row[4].value, int)

    # The formula title is a string cell with Excel's quote prefix, never a formula.
    title = sheet.cell(row=5, column=3)
    assert title.value == f'=HYPERLINK("http://x/{jobs.tag}")'
    assert title.data_type == "s" and title.quotePrefix
    assert sheet.cell(row=2, column=4).data_type == "s"  # "@Home Services ..."
    with zipfile.ZipFile(io.BytesIO(response.content)) as xlsx:
        xml = xlsx.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml


async def test_job_filters_are_the_lists(stack: Stack, jobs: Jobs) -> None:
    lead, parts, closed, canceled = (j["slug"] for j in jobs.in_order)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"q": jobs.tag}, [lead, parts, closed, canceled]),
        ({"q": jobs.tag, "stage": "awaiting_parts"}, [parts]),
        ({"q": jobs.tag, "milestone": "Closed"}, [closed]),
        ({"client_id": jobs.client_a["id"]}, [parts, canceled]),
        ({"q": jobs.tag, "stuck": "false"}, [lead, parts, closed, canceled]),
        ({"q": jobs.tag, "stuck": "true"}, []),
        ({"q": str(jobs.closed["number"]), "client_id": jobs.client_b["id"]}, [closed]),
        ({"q": lead}, [lead]),  # a slug
    ]
    for params, slugs in cases:
        rows = _csv(await _download(stack, "jobs.csv", **params))
        assert [r[1] for r in rows[1:]] == slugs, params
        xlsx = _values(_sheet(await _download(stack, "jobs.xlsx", **params)))
        assert [r[1] for r in xlsx[1:]] == slugs, params
        # The same jobs GET /api/v1/jobs lists for the same query (it orders by last change).
        listed = (
            await stack.get("olga", "/api/v1/jobs", params={**params, "page_size": 200})
        ).json()
        assert sorted(i["slug"] for i in listed["items"]) == sorted(slugs), params

    bad = await stack.get("olga", f"{EXPORTS}/jobs.csv", params={"stage": "nowhere"})
    assert bad.status_code == 422
    bad = await stack.get("olga", f"{EXPORTS}/parts.xlsx", params={"client_id": "0"})
    assert bad.status_code == 422


# --- the logistics order tracking sheet -------------------------------------------------------


async def test_parts_csv_has_one_exact_row_per_part_line(stack: Stack, jobs: Jobs) -> None:
    response = await stack.get("olga", f"{EXPORTS}/parts.csv", params={"q": jobs.tag})
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="jobline-parts-orders-'
    )
    rows = _csv(response.content)
    expected = _as_csv(_part_truth(jobs, await _zone(stack)), KINDS_PARTS)
    expected[3][4] = "'" + DDE  # the description, supplier and PO of the canceled job's line
    expected[3][6] = "'+Grainger"
    expected[3][7] = "'@PO-1"
    assert rows[0] == PART_HEADER
    assert rows[1:] == expected


async def test_parts_xlsx_has_typed_cells(stack: Stack, jobs: Jobs) -> None:
    sheet = _sheet(await _download(stack, "parts.xlsx", "ada", q=jobs.tag))
    assert sheet.title == "Parts orders"
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref == "A1:M5"
    assert _values(sheet)[0] == PART_HEADER
    assert _values(sheet)[1:] == _as_xlsx(_part_truth(jobs, await _zone(stack)), KINDS_PARTS)
    assert sheet["J2"].is_date and sheet["J2"].number_format == "yyyy-mm-dd"
    assert sheet["I2"].is_date and sheet["I2"].number_format.startswith('yyyy-mm-dd hh:mm "')
    for ref in ("E5", "G5", "H5"):
        assert sheet[ref].data_type == "s" and sheet[ref].quotePrefix, ref


async def test_parts_filters(stack: Stack, jobs: Jobs) -> None:
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"outstanding": "true"}, ["CAP-45", "BELT-9", "VALVE-2"]),
        ({"outstanding": "false"}, ["FAN-1"]),
        ({"overdue": "true"}, ["CAP-45"]),
        ({"overdue": "false", "outstanding": "true"}, ["BELT-9", "VALVE-2"]),
        ({"stage": "canceled"}, ["VALVE-2"]),
        ({"milestone": "Lead"}, []),
    ]
    for params, skus in cases:
        rows = _csv(await _download(stack, "parts.csv", q=jobs.tag, **params))
        assert rows[0] == PART_HEADER
        assert [r[3] for r in rows[1:]] == skus, params
    empty = _sheet(await _download(stack, "parts.xlsx", client_id=jobs.client_b["id"]))
    assert _values(empty) == [PART_HEADER]  # jobs without parts have no lines


async def test_small_batches_give_the_same_sheets(
    stack: Stack, jobs: Jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are read and sent a batch at a time: batches of one lose and repeat nothing."""
    whole = {p: await _download(stack, p, q=jobs.tag) for p in ("jobs.csv", "parts.csv")}
    monkeypatch.setattr(exports, "_BATCH", 1)
    monkeypatch.setattr(export_routes, "_ROWS_PER_CHUNK", 1)
    for path, content in whole.items():
        assert await _download(stack, path, q=jobs.tag) == content
    assert len(_csv(whole["parts.csv"])) == 5


# --- time zone, roles, visibility -------------------------------------------------------------


@contextlib.asynccontextmanager
async def _company_zone(stack: Stack, zone: str) -> AsyncIterator[None]:
    before = (await stack.get("ada", COMMS)).json()
    response = await stack.http.put(
        COMMS, headers=stack.auth("ada"), json={**before, "timezone": zone}
    )
    assert response.status_code == 200, response.text
    try:
        yield
    finally:
        restored = await stack.http.put(COMMS, headers=stack.auth("ada"), json=before)
        assert restored.status_code == 200, restored.text


async def test_times_are_the_companys_wall_clock(stack: Stack, jobs: Jobs) -> None:
    chicago = ZoneInfo("America/Chicago")
    async with _company_zone(stack, "America/Chicago"):
        response = await stack.get("olga", f"{EXPORTS}/jobs.csv", params={"q": jobs.lead["slug"]})
        rows = _csv(response.content)
        sheet = _sheet(await _download(stack, "parts.xlsx", q=jobs.tag, overdue="true"))
    created = datetime.fromisoformat(jobs.lead["created_at"]).astimezone(chicago)
    assert rows[1][10] == created.replace(microsecond=0).isoformat()
    assert rows[1][10].endswith(("-05:00", "-06:00"))
    today = datetime.now(chicago).date().isoformat()
    assert f'filename="jobline-jobs-{today}.csv"' in response.headers["content-disposition"]
    ordered = datetime.fromisoformat(jobs.parts["parts"][1]["ordered_at"]).astimezone(chicago)
    assert sheet["I2"].value == ordered.replace(microsecond=0, tzinfo=None)
    # The workbook names the zone: CST or CDT, whichever was in force at that moment.
    assert sheet["I2"].number_format == f'yyyy-mm-dd hh:mm "{ordered:%Z}"'
    assert ordered.strftime("%Z") in ("CST", "CDT")


async def test_workbook_amounts_carry_the_configured_currency_symbol(
    stack: Stack, jobs: Jobs
) -> None:
    branding = (await stack.get("ada", "/api/v1/settings/branding")).json()
    euro = await stack.http.put(
        "/api/v1/settings/branding",
        headers=stack.auth("ada"),
        json={**branding, "currency_symbol": "€"},
    )
    assert euro.status_code == 200, euro.text
    try:
        sheet = _sheet(await _download(stack, "jobs.xlsx", q=jobs.tag))
    finally:
        back = await stack.http.put(
            "/api/v1/settings/branding", headers=stack.auth("ada"), json=branding
        )
        assert back.status_code == 200, back.text
    quote_total = sheet.cell(row=3, column=13)
    assert quote_total.data_type == "n" and isinstance(quote_total.value, int | float)
    assert quote_total.number_format == '"€"#,##0.00;-"€"#,##0.00'


@pytest.mark.parametrize("path", PATHS)
async def test_only_office_managers_and_admins_export(stack: Stack, path: str) -> None:
    url = f"{EXPORTS}/{path}"
    assert (await stack.http.get(url)).status_code == 401
    unknown = await stack.http.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert unknown.status_code == 401
    for username in ("tess", "tom", "sam"):
        refused = await stack.get(username, url)
        assert refused.status_code == 403, username
        assert refused.json()["error"]["code"] == "forbidden"
        assert "admin, manager, office" in refused.json()["error"]["message"]
    for username in ("olga", "mia", "ada"):
        assert (await stack.get(username, url, params={"stage": "lead"})).status_code == 200


async def test_the_lists_visibility_rule_applies(stack: Stack, jobs: Jobs) -> None:
    """Technicians may not export at all; should that change, they would still see only the
    jobs they are assigned to or worked on, as in the list."""
    async with stack.db.session() as session:
        users = await session.exec(
            select(User).where(col(User.username).in_(["tess", "tom", "olga"]))
        )
        people = {u.username: u for u in users.all()}
        filters = exports.JobFilters(q=jobs.tag)
        for username, slugs in (
            ("tess", [jobs.closed["slug"]]),
            ("tom", []),
            ("olga", [j["slug"] for j in jobs.in_order]),
        ):
            rows = (await session.exec(exports.jobs_query(people[username], filters))).all()
            assert [r.slug for r in rows] == slugs, username


# --- the cell rules themselves ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Acme = best", "Acme = best"),
        (" =1", " =1"),
        ("", ""),
    ],
)
def test_guard(text: str, shown: str) -> None:
    assert guard(text) == shown


def test_numbers_and_dates_are_ours_and_never_guarded() -> None:
    assert csv_cell(Decimal("-5.00"), "money") == "-5.00"
    assert csv_cell(Decimal("1234567.5"), "money") == "1234567.50"
    assert csv_cell(date(2030, 1, 5), "date") == "2030-01-05"
    assert csv_cell(None, "money") == ""
    assert csv_cell(True, "flag") == "yes"
    assert csv_cell("-5", "text") == "'-5"
