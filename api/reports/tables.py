"""The reports as CSV: each report's table(s), one header row, then the same rows as its JSON.

A report with more than one table (pipeline's milestones, sales' months, resulting's lists) gives
its first one by default and another with `?table=`. Cells: money with two decimals, times ISO
8601 in the company's zone, rates as fractions, lists joined with "; ", empty for None. Text that
a spreadsheet would run as a formula gets a leading apostrophe (api/exports/sheets.guard, the
tracking sheets' rule).
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from api.exports.sheets import guard
from api.reports import schemas as s

# report name -> table name -> (the report's attribute holding the rows, columns: header, field).
# The first table of each report is its default.
Columns = tuple[tuple[str, str], ...]
TABLES: dict[str, dict[str, tuple[str, Columns]]] = {
    "pipeline": {
        "stages": (
            "rows",
            (
                ("Stage", "stage"),
                ("Milestone", "milestone"),
                ("Jobs", "count"),
                ("Amount", "amount"),
            ),
        ),
        "milestones": (
            "milestones",
            (("Milestone", "milestone"), ("Jobs", "count"), ("Amount", "amount")),
        ),
    },
    "sales": {
        "owners": (
            "rows",
            (
                ("Month", "month"),
                ("Owner", "owner"),
                ("Approved jobs", "approved_count"),
                ("Contract amount", "contract_amount"),
                ("Sale results", "sale_count"),
                ("Sale amount", "sale_amount"),
            ),
        ),
        "months": (
            "months",
            (
                ("Month", "month"),
                ("Approved jobs", "approved_count"),
                ("Contract amount", "contract_amount"),
                ("Sale results", "sale_count"),
                ("Sale amount", "sale_amount"),
            ),
        ),
    },
    "conversion": {
        "owners": (
            "rows",
            (
                ("Owner", "owner"),
                ("Leads", "created"),
                ("Approved", "approved"),
                ("Closed", "closed"),
                ("Canceled", "canceled"),
                ("Approval rate", "approval_rate"),
                ("Close rate", "close_rate"),
                ("Approved closed rate", "approved_close_rate"),
            ),
        ),
    },
    "loss-reasons": {
        "reasons": (
            "rows",
            (
                ("Source", "source"),
                ("Field", "field"),
                ("Label", "label"),
                ("Reason", "reason"),
                ("Count", "count"),
            ),
        ),
    },
    "time-in-stage": {
        "stages": (
            "rows",
            (
                ("Stage", "stage"),
                ("Visits", "visits"),
                ("Open visits", "open_visits"),
                ("Median hours", "median_hours"),
                ("P90 hours", "p90_hours"),
            ),
        ),
    },
    "stuck": {
        "jobs": (
            "rows",
            (
                ("Slug", "slug"),
                ("Job number", "number"),
                ("Title", "title"),
                ("Client", "client_name"),
                ("Owner", "owner"),
                ("Stage", "stage"),
                ("Waiting on", "waiting_on"),
                ("Reasons", "reasons"),
                ("Stage entered", "stage_entered_at"),
                ("Hours in stage", "hours_in_stage"),
            ),
        ),
    },
    "follow-ups": {
        "months": (
            "rows",
            (
                ("Month", "month"),
                ("Owner", "owner"),
                ("Follow-ups sent", "sent"),
                ("Quotes", "quotes"),
                ("Approved", "approved"),
                ("Declined", "declined"),
                ("Canceled", "canceled"),
                ("Waiting", "waiting"),
            ),
        ),
    },
    "resulting": {
        "totals": ("totals", (("Type", "type"), ("Results", "count"), ("Amount", "amount"))),
        "unresulted": (
            "unresulted",
            (
                ("Slug", "slug"),
                ("Job number", "number"),
                ("Title", "title"),
                ("Client", "client_name"),
                ("Owner", "owner"),
                ("Stage", "stage"),
                ("Result due", "resulting_due_at"),
            ),
        ),
        "resubmitted-jobs": (
            "resubmitted_jobs",
            (
                ("Slug", "slug"),
                ("Job number", "number"),
                ("Owner", "owner"),
                ("Revisions", "revisions"),
                ("Resubmissions", "resubmissions"),
            ),
        ),
        "users": (
            "by_user",
            (("User", "user"), ("Submissions", "submissions"), ("Resubmissions", "resubmissions")),
        ),
        "field-completion": (
            "field_completion",
            (
                ("Type", "type"),
                ("Key", "key"),
                ("Label", "label"),
                ("Results", "results"),
                ("Filled", "filled"),
                ("Rate", "rate"),
            ),
        ),
    },
}


EVERYONE = "(all owners)"  # the conversion total's owner cell; an empty owner is "no owner"


def table_names(report: str) -> list[str]:
    return list(TABLES[report])


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return guard("; ".join(str(v) for v in value))
    return guard(str(value))


def csv_text(report: s.Report, table: str) -> str:
    """The table as CSV text (RFC 4180, CRLF lines), with its header row."""
    attribute, columns = TABLES[report.name][table]
    rows: list[BaseModel] = getattr(report, attribute)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([header for header, _ in columns])
    for row in rows:
        writer.writerow([cell(getattr(row, field)) for _, field in columns])
    if isinstance(report, s.ConversionReport):  # everyone's row last, named so
        total = [cell(getattr(report.total, field)) for _, field in columns]
        writer.writerow([EVERYONE, *total[1:]])
    return buffer.getvalue()
