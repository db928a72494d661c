"""A job result's document and email (activities/result_document.py), in both patterns.

The documents are real PDFs from the real renderer (in threads: no worker processes to start),
read back with pypdf; the emails are checked as the recipients read them. The job is the
documents tests' fully worked job, so it has internal notes that must stay out.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from activities.pdf import PdfRenderer
from activities.result_document import (
    result_document_html,
    result_email,
    result_rows,
    revision_wording,
)
from core.company import Company
from models.communications import CommunicationSettings
from models.lifecycle import JobState
from models.resulting import ResultField, ResultRevision
from tests.activities.test_documents import BRAND, flat, job, pdf_text

# 15:30 UTC in November is 10:30 in New York (EST): the zone the company works in.
SUBMITTED = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
NEW_YORK = CommunicationSettings(company_name="Acme (comms)", timezone="America/New_York")
COMPANY = Company.of(NEW_YORK, BRAND)
WHEN = "Fri 20 Nov 2026, 10:30 EST"
URL = "https://jobline.example/jobs/harbor-4"
# What the documents tests' job holds that is internal or beside the point of a result.
NOT_PRINTED = ["Change the filter in 3 months.", "Parts warranty 12 months.", "Tenant reports"]

SALE_FORM = [
    ResultField(key="sale_amount", label="Sale amount", type="currency", required=True),
    ResultField(key="signed_on", label="Contract signed", type="date", required=True),
    ResultField(key="units", label="Units sold", type="number"),
    ResultField(key="financing", label="Financing used?", type="checkbox"),
    ResultField(
        key="channel", label="Sold through", type="dropdown", options=["Referral", "Web", "Phone"]
    ),
    ResultField(key="notes", label="Sales notes", type="text"),
]
SALE_FIELDS: dict[str, Any] = {
    "sale_amount": "12345.50",
    "signed_on": "2026-11-19",
    "units": "2.5",
    "financing": False,
    "channel": "Referral",
    # "notes" left empty: an optional field is absent from the kept values.
}
# Each filled field as printed: money with the symbol, the date as documents write dates.
SALE_PRINTED = [
    ("Sale amount", "$12,345.50"),
    ("Contract signed", "Thu 19 Nov 2026"),
    ("Units sold", "2.5"),
    ("Financing used?", "No"),
    ("Sold through", "Referral"),
]
NO_SALE_FORM = [
    ResultField(
        key="loss_reason",
        label="Why we lost it",
        type="dropdown",
        required=True,
        options=["Price", "Timing", "Went with competitor"],
    ),
    ResultField(key="competitor_price", label="Competitor's price", type="currency"),
]


def sale(pattern: str, revision: int = 1, **changes: Any) -> ResultRevision:
    kept: dict[str, Any] = {
        "revision": revision,
        "type": "sale",
        "fields": SALE_FIELDS,
        "submitted_by": "olga",
        "submitted_at": SUBMITTED,
        "form": SALE_FORM,
        "pattern": pattern,
    }
    return ResultRevision(**(kept | changes))


def no_sale(pattern: str, revision: int = 1) -> ResultRevision:
    return ResultRevision(
        revision=revision,
        type="no_sale",
        fields={"loss_reason": "Went with competitor", "competitor_price": "9800"},
        submitted_by="olga",
        submitted_at=SUBMITTED,
        form=NO_SALE_FORM,
        pattern=pattern,
    )


@pytest.fixture(scope="module")
async def renderer() -> AsyncIterator[PdfRenderer]:
    pdfs = PdfRenderer(mode="thread")
    yield pdfs
    pdfs.close()


async def document_text(
    renderer: PdfRenderer,
    revision: ResultRevision,
    state: JobState | None = None,
    company: Company = COMPANY,
    owner_name: str | None = "Sam Seller",
) -> tuple[str, str]:
    """The document's file name and its PDF's text (whitespace made single spaces)."""
    rendered = result_document_html(
        revision,
        state or job(),
        company,
        company.branding,
        submitted_by_name="Olga Office",
        owner_name=owner_name,
    )
    result = await renderer.render_result(rendered.html)
    assert result.refused == []  # our own templates ask for nothing
    return rendered.filename, flat(pdf_text(result.pdf))


# --- the document ------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", ["standard", "compact"])
async def test_the_document_prints_the_job_who_resulted_it_and_every_field(
    renderer: PdfRenderer, pattern: str
) -> None:
    filename, text = await document_text(renderer, sale(pattern))
    assert filename == "result-1042-r1.pdf"
    for wanted in [
        "Acme Cooling & Heating",  # the letterhead, as on every document
        "License #HVAC-44821",
        "Job result: Sale",
        "1042",
        "No cooling, unit 4",
        "Harbor View Apartments",
        "1200 Harbor Blvd, Unit 4",
        "Sam Seller",
        "Olga Office",
        WHEN,  # the company's zone, named
        "Revision 1",
        *(f"{label} {value}" for label, value in SALE_PRINTED),
    ]:
        assert wanted in text, f"{wanted!r} missing from the {pattern} document: {text}"
    assert "replaces" not in text
    for internal in NOT_PRINTED:
        assert internal not in text, f"{internal!r} printed on the {pattern} document"
    # The optional field left empty: asked and unanswered (standard), or left out (compact).
    if pattern == "standard":
        assert "Sales notes —" in text
        assert f"Submitted by Olga Office Submitted {WHEN}" in text
    else:
        assert "Sales notes" not in text
        assert "Job 1042 — No cooling, unit 4" in text
        assert f"Submitted by Olga Office, {WHEN}" in text


@pytest.mark.parametrize("pattern", ["standard", "compact"])
async def test_a_resubmission_says_which_revision_it_replaces(
    renderer: PdfRenderer, pattern: str
) -> None:
    filename, text = await document_text(renderer, sale(pattern, revision=3))
    assert filename == "result-1042-r3.pdf"
    assert "Revision 3, replaces revision 2" in text, text


@pytest.mark.parametrize("pattern", ["standard", "compact"])
async def test_a_no_sale_in_another_currency_on_a_job_without_a_number(
    renderer: PdfRenderer, pattern: str
) -> None:
    euro = Company.of(NEW_YORK, BRAND.model_copy(update={"currency_symbol": "€"}))
    state = job(number=None)
    filename, text = await document_text(
        renderer, no_sale(pattern, revision=2), state, euro, owner_name=None
    )
    assert filename == f"result-{state.slug}-r2.pdf"  # the slug stands in for a number
    for wanted in [
        "Job result: No Sale",
        state.slug,
        "Why we lost it Went with competitor",
        "Competitor's price €9,800.00",
        "Unassigned",  # no owner
        "Revision 2, replaces revision 1",
    ]:
        assert wanted in text, f"{wanted!r} missing: {text}"
    assert "$" not in text


async def test_user_text_prints_as_text_and_fetches_nothing(renderer: PdfRenderer) -> None:
    hostile = '<img src="file:///etc/passwd">'
    state = job(f" {hostile}")  # in the title, client name and site address
    revision = sale("standard", fields={**SALE_FIELDS, "notes": f"see {hostile}"})
    for pattern in ("standard", "compact"):
        rendered = result_document_html(
            revision.model_copy(update={"pattern": pattern}),
            state,
            COMPANY,
            BRAND,
            submitted_by_name=f"Olga {hostile}",
            owner_name=f"Sam {hostile}",
        )
        assert "<img src=" not in rendered.html and "&lt;img src=" in rendered.html
        result = await renderer.render_result(rendered.html)
        assert result.refused == []  # there was no element to ask for anything
        assert b"root:x:" not in result.pdf
        text = flat(pdf_text(result.pdf))
        assert f"No cooling, unit 4 {hostile}" in text, text
        assert f"see {hostile}" in text and f"Sam {hostile}" in text


# --- the email ---------------------------------------------------------------------------------


def test_the_subject_names_the_job_the_outcome_and_what_a_resubmission_replaces() -> None:
    state = job()
    subject, _ = result_email(sale("standard"), state, COMPANY, submitted_by_name="O", job_url=None)
    assert subject == "Job 1042 resulted: Sale — No cooling, unit 4"
    subject, _ = result_email(
        no_sale("compact", revision=2), state, COMPANY, submitted_by_name="Olga", job_url=None
    )
    assert subject == "Job 1042 resulted: No Sale — No cooling, unit 4 (revision 2, replaces 1)"
    # A title with line breaks cannot add a header: the subject is one line.
    broken = job(title="Leak\r\nBcc: everyone@example.com")
    subject, _ = result_email(
        sale("standard"), broken, COMPANY, submitted_by_name="O", job_url=None
    )
    assert subject == "Job 1042 resulted: Sale — Leak Bcc: everyone@example.com"


def test_the_standard_email_lists_every_field_who_when_and_the_link() -> None:
    subject, body = result_email(
        sale("standard", revision=2), job(), COMPANY, submitted_by_name="Olga Office", job_url=URL
    )
    assert subject.endswith("(revision 2, replaces 1)")
    lines = [line.strip() for line in body.splitlines()]
    assert lines[0] == "Job 1042 was resulted: Sale."
    for wanted in [
        "Job:       1042 — No cooling, unit 4",
        "Client:    Harbor View Apartments",
        "Site:      1200 Harbor Blvd, Unit 4",
        "Revision:  2, replaces revision 1",
        f"Submitted: by Olga Office on {WHEN}",
        "Sale amount:     $12,345.50",
        "Contract signed: Thu 19 Nov 2026",
        "Units sold:      2.5",
        "Financing used?  No",
        "Sold through:    Referral",
        "Sales notes:     —",  # asked, left empty
        f"Open the job: {URL}",
    ]:
        assert wanted in lines, f"{wanted!r} missing from:\n{body}"
    for internal in NOT_PRINTED:
        assert internal not in body


def test_the_compact_email_is_one_short_line_a_filled_field() -> None:
    _, body = result_email(
        sale("compact"), job(), COMPANY, submitted_by_name="Olga Office", job_url=URL
    )
    assert body.splitlines() == [
        "Sale · Job 1042 — No cooling, unit 4 · Harbor View Apartments",
        "Sale amount: $12,345.50",
        "Contract signed: Thu 19 Nov 2026",
        "Units sold: 2.5",
        "Financing used? No",
        "Sold through: Referral",
        f"Revision 1 · Olga Office · {WHEN}",
        URL,
    ]
    # Resubmitted, without a link, with text on several lines (kept to one line here).
    noted = sale("compact", revision=2, fields={**SALE_FIELDS, "notes": "Signed\non site"})
    _, body = result_email(noted, job(), COMPANY, submitted_by_name="Olga", job_url=None)
    assert "Sales notes: Signed on site" in body.splitlines()
    assert body.splitlines()[-1] == f"Revision 2 (replaces 1) · Olga · {WHEN}"
    assert "https://" not in body


def test_the_standard_email_keeps_a_multiline_value_under_its_label() -> None:
    noted = sale("standard", fields={**SALE_FIELDS, "notes": "Signed on site.\nDeposit taken."})
    _, body = result_email(noted, job(), COMPANY, submitted_by_name="Olga", job_url=None)
    assert "  Sales notes:     Signed on site.\n                   Deposit taken.\n" in body
    assert "Open the job" not in body


# --- pure helpers --------------------------------------------------------------------------------


def test_a_revision_kept_without_its_form_still_prints_every_value() -> None:
    bare = ResultRevision(
        revision=1,
        type="sale",
        fields={"sale_amount": "10.00", "financing": True},
        submitted_by="olga",
        submitted_at=SUBMITTED,
    )
    rows = [(row.label, row.value) for row in result_rows(bare, COMPANY)]
    # Without a form nobody knows 10.00 is money: it prints as kept, under its key.
    assert rows == [("sale_amount", "10.00"), ("financing", "Yes")]
    assert revision_wording(1) == "Revision 1"
    assert revision_wording(2) == "Revision 2, replaces revision 1"
