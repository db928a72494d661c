"""A job result's document and email, in the pattern its type was set to (DESIGN.md §6 "Job
resulting").

Pure: no I/O. The resulting workflow's activity passes in one revision of the job's result, the
job's state, the company and the people's display names, and gets back the document's HTML
(rendered to PDF by activities/pdf.py like every other document) and the email's subject and
plain-text body.

A revision carries its own `form` (the type's fields as configured when it was submitted) and
`pattern`, so an old revision prints the labels it was submitted under, whatever the settings
say today. Two patterns (models.resulting.PATTERNS):

- "standard": the usual letterhead, client and site, then every field in a table; a field left
  empty prints "—", so a reader sees it was asked and not answered.
- "compact": one card with the outcome, the job and who resulted it, then only the fields that
  were filled in; the email is a few short lines.

The document is internal, for the sales team: it names the owner and who submitted it, and never
prints the job's internal notes (the technician's completion notes, the quote's notes) nor its
description. Values print as the other documents print them: money with the company's symbol,
dates and times in the company's zone with the zone named. User text goes through the templates'
autoescaping (activities/documents.py says why that is enough).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from activities.documents import RenderedHtml, brand_context, job_reference, render_template
from core.company import Company
from models.branding import BrandingSettings
from models.lifecycle import JobState
from models.resulting import TYPE_LABELS, ResultRevision

TITLE = "Job result"
EMPTY = "—"  # an optional field nobody filled in, in the standard pattern
UNASSIGNED = "Unassigned"
TEMPLATE_OF = {"standard": "result_standard.html", "compact": "result_compact.html"}


@dataclass(frozen=True)
class ResultRow:
    """One field of the revision as a person reads it; `value` is None when left empty."""

    label: str
    value: str | None


def field_value(value: Any, field_type: str | None, company: Company) -> str:
    """A kept value as printed: Yes/No for checkboxes, money with the company's symbol, dates
    as every document writes them ("Sun 20 Dec 2026"), numbers and text as kept."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if field_type == "currency":
        return company.money(str(value))  # text that is not an amount prints as written
    if field_type == "date" and isinstance(value, str):
        try:
            return company.day(date.fromisoformat(value))
        except ValueError:  # kept before dates were checked: print it as written
            return value
    return str(value)


def result_rows(revision: ResultRevision, company: Company) -> list[ResultRow]:
    """Every field of the revision's form, in its order, then any value the form does not name
    (a revision kept without its form): a value is never dropped for want of a label."""
    rows: list[ResultRow] = []
    named: set[str] = set()
    for field in revision.form:
        named.add(field.key)
        value = revision.fields.get(field.key)
        empty = value is None or (isinstance(value, str) and not value.strip())
        rows.append(
            ResultRow(field.label, None if empty else field_value(value, field.type, company))
        )
    for key, value in revision.fields.items():
        if key not in named and value is not None:
            rows.append(ResultRow(key, field_value(value, None, company)))
    return rows


def revision_wording(revision: int) -> str:
    """`Revision 1`; from 2 on, what it replaces: `Revision 2, replaces revision 1`."""
    if revision <= 1:
        return f"Revision {revision}"
    return f"Revision {revision}, replaces revision {revision - 1}"


def result_filename(revision: ResultRevision, job: JobState) -> str:
    return f"result-{job_reference(job)}-r{revision.revision}.pdf"


def _revision_number(revision: int) -> str:
    """`1`; from 2 on, `2, replaces revision 1`."""
    return revision_wording(revision).removeprefix("Revision ")


def _one_line(text: str) -> str:
    """Text for a subject or a one-line summary: every run of whitespace (newlines too) one
    space, so nothing a person typed can start a new header or line."""
    return " ".join(text.split())


def result_document_html(
    revision: ResultRevision,
    job: JobState,
    company: Company,
    branding: BrandingSettings,
    *,
    has_logo: bool = False,
    submitted_by_name: str,
    owner_name: str | None,
) -> RenderedHtml:
    """The revision's document in its pattern: HTML, file name and title. Pure."""
    ref = job_reference(job)
    outcome = TYPE_LABELS[revision.type]
    reference = f"{ref}-R{revision.revision}"
    submitted_at = company.when(revision.submitted_at)
    owner = owner_name or UNASSIGNED
    rows = result_rows(revision, company)
    compact = revision.pattern == "compact"
    facts = [("Result", outcome), ("Job", ref), ("Revision", str(revision.revision))]
    if not compact:
        facts.append(("Submitted", submitted_at))
    client = job.client
    context = {
        "brand": brand_context(company, branding, has_logo=has_logo),
        "doc": {
            "title": TITLE,
            "reference": reference,
            "facts": facts,
            "client_label": "Client",
            "footer_note": "Internal document for the sales team.",
        },
        "client": {"name": client.name, "lines": [c for c in (client.email, client.phone) if c]},
        # No description: the result is about the outcome, and the job's notes stay internal.
        "job": {
            "reference": ref,
            "title": job.title,
            "description": "",
            "site_address": job.site_address,
        },
        "result": {
            "outcome": outcome,
            "type": revision.type,
            "revision": revision_wording(revision.revision),
            "owner": owner,
            "submitted_by": submitted_by_name,
            "submitted_at": submitted_at,
            "empty": EMPTY,
            "rows": rows if not compact else [row for row in rows if row.value is not None],
        },
    }
    html = render_template(TEMPLATE_OF.get(revision.pattern, TEMPLATE_OF["standard"]), context)
    return RenderedHtml(
        html=html, filename=result_filename(revision, job), title=f"{TITLE} {reference}"
    )


def result_subject(revision: ResultRevision, job: JobState) -> str:
    """`Job 1042 resulted: Sale — No cooling, unit 4`, and `(revision 2, replaces 1)` after."""
    subject = f"Job {job_reference(job)} resulted: {TYPE_LABELS[revision.type]}"
    if job.title.strip():
        subject += f" — {_one_line(job.title)}"
    if revision.revision > 1:
        subject += f" (revision {revision.revision}, replaces {revision.revision - 1})"
    return subject


def result_email(
    revision: ResultRevision,
    job: JobState,
    company: Company,
    *,
    submitted_by_name: str,
    job_url: str | None,
) -> tuple[str, str]:
    """The email to the type's recipients: (subject, plain-text body), in the revision's
    pattern. Pure."""
    rows = result_rows(revision, company)
    if revision.pattern == "compact":
        body = _compact_body(revision, job, company, rows, submitted_by_name, job_url)
    else:
        body = _standard_body(revision, job, company, rows, submitted_by_name, job_url)
    return result_subject(revision, job), body


def _standard_body(
    revision: ResultRevision,
    job: JobState,
    company: Company,
    rows: list[ResultRow],
    submitted_by_name: str,
    job_url: str | None,
) -> str:
    ref = job_reference(job)
    outcome = TYPE_LABELS[revision.type]
    lines = [f"Job {ref} was resulted: {outcome}.", ""]
    facts = [
        ("Job", f"{ref} — {_one_line(job.title)}" if job.title.strip() else ref),
        ("Client", _one_line(job.client.name)),
        ("Site", _one_line(job.site_address) or EMPTY),
        ("Revision", _revision_number(revision.revision)),
        ("Submitted", f"by {submitted_by_name} on {company.when(revision.submitted_at)}"),
    ]
    lines += _aligned(facts)
    lines += ["", f"{outcome} details:"]
    lines += _aligned([(row.label, row.value or EMPTY) for row in rows], indent="  ")
    if job_url:
        lines += ["", f"Open the job: {job_url}"]
    if revision.revision > 1:
        lines += [
            "",
            f"This result replaces revision {revision.revision - 1}; "
            "earlier revisions stay in the job's history.",
        ]
    return "\n".join(lines) + "\n"


def _compact_body(
    revision: ResultRevision,
    job: JobState,
    company: Company,
    rows: list[ResultRow],
    submitted_by_name: str,
    job_url: str | None,
) -> str:
    job_line = f"Job {job_reference(job)}"
    if job.title.strip():
        job_line += f" — {_one_line(job.title)}"
    headline = [TYPE_LABELS[revision.type], job_line]
    if job.client.name.strip():
        headline.append(_one_line(job.client.name))
    replaces = f" (replaces {revision.revision - 1})" if revision.revision > 1 else ""
    lines = [" · ".join(headline)]
    lines += [f"{_labelled(row.label)} {_one_line(row.value)}" for row in rows if row.value]
    lines.append(
        f"Revision {revision.revision}{replaces} · {submitted_by_name} · "
        f"{company.when(revision.submitted_at)}"
    )
    if job_url:
        lines.append(job_url)
    return "\n".join(lines) + "\n"


def _labelled(label: str) -> str:
    """`Label:`, but a label that ends in its own punctuation (`Financing?`) keeps it alone."""
    return label if label.endswith(("?", ":")) else f"{label}:"


def _aligned(pairs: list[tuple[str, str]], indent: str = "") -> list[str]:
    """`Label: value` lines with the values in one column; a value's later lines (text with
    line breaks) start under its first."""
    width = max((len(label) for label, _ in pairs), default=0) + 2
    lines: list[str] = []
    for label, value in pairs:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{indent}{_labelled(label):<{width}}{first}".rstrip())
        lines += [f"{indent}{'':<{width}}{more}".rstrip() for more in rest]
    return lines
