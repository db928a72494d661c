"""A small data set for the reports page's tests (tests/api/test_reports_page.py and
tests/web/test_reports_browser.py): two new sales people, so a test filters by its own owners
and the shared database's other jobs never change what it expects.

Jobs move through the API (real workflows): the seller's job approved at the quote's total, the
seller's lead canceled with a reason that holds markup, a quoted job of theirs, and the other
seller's approved job. Results are written as the resulting workflow's activity writes them
(job_results rows and the job's result columns), since the reports only read those rows: the
approved job resulted Sale and then resubmitted, the canceled one resulted No Sale ("Price"),
the quoted one overdue for a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlmodel import select

from api.users.service import add_token, find_user
from models.tables import Job, JobResult
from tests.api.journeys import QUOTE, drive
from tests.api.signed_in import new_person
from tests.conftest import Stack

QUOTE_TOTAL = Decimal("657.50")  # QUOTE: 420.00 + 2.5 × 95.00
CANCEL_REASON = "<i>Too pricey</i> & slow"
SALE_FORM: list[dict[str, Any]] = [
    {"key": "sale_amount", "label": "Sale amount", "type": "currency", "required": True},
    {"key": "financing", "label": "Financing", "type": "checkbox", "required": False},
]
NO_SALE_FORM: list[dict[str, Any]] = [
    {"key": "loss_reason", "label": "Why we lost it", "type": "dropdown", "required": True,
     "options": ["Price", "Timing", "Went with competitor"]},
    {"key": "notes", "label": "Notes", "type": "text", "required": False},
]  # fmt: skip


@dataclass
class Seeded:
    seller: str  # a new sales person: three jobs
    other: str  # another new sales person: one job
    approved: dict  # the seller's, approved at QUOTE_TOTAL, resulted Sale twice
    canceled: dict  # the seller's, canceled with CANCEL_REASON, resulted No Sale
    quoted: dict  # the seller's, quote sent, overdue for a result
    others: dict  # the other seller's, approved


def _to_approved(owner: str) -> list[tuple[str, str, dict]]:
    return [
        ("olga", "owner_assigned", {"owner": owner}),
        (owner, "lead_qualified", {}),
        (owner, "quote_drafted", QUOTE),
        (owner, "quote_sent", {}),
        ("olga", "quote_approved", {}),
    ]


async def _result(
    stack: Stack, slug: str, revision: int, type_: str, fields: dict, by: str,
    amount: Decimal | None,
) -> None:  # fmt: skip
    """A revision of the job's result, as the resulting workflow's activity records it."""
    now = datetime.now(UTC)
    async with stack.db.session() as session:
        session.add(
            JobResult(
                job_slug=slug, revision=revision, type=type_, fields=fields,
                form=SALE_FORM if type_ == "sale" else NO_SALE_FORM, amount=amount,
                submitted_by=by, submitted_at=now,
            )
        )  # fmt: skip
        job = (await session.exec(select(Job).where(Job.slug == slug))).one()
        job.result_type, job.result_revision = type_, revision
        job.result_amount, job.resulted_at = amount, now
        job.unresulted = False
        session.add(job)


async def _overdue_for_a_result(stack: Stack, slug: str) -> None:
    async with stack.db.session() as session:
        job = (await session.exec(select(Job).where(Job.slug == slug))).one()
        job.resulting_due_at = datetime.now(UTC) - timedelta(days=2)
        job.unresulted = True
        session.add(job)


async def _seller(stack: Stack) -> str:
    """A new sales person with a password (for pages) and an API token (to move their jobs)."""
    username = await new_person(stack, "sales")
    async with stack.db.session() as session:
        user = await find_user(session, username)
        assert user is not None
        stack.tokens[username] = await add_token(session, user)
    return username


async def seed(stack: Stack) -> Seeded:
    seller = await _seller(stack)
    other = await _seller(stack)

    approved = await stack.new_job(title="Seller's approved job")
    approved = await drive(stack, approved["slug"], _to_approved(seller))
    canceled = await stack.new_job(title="Seller's lost lead")
    await drive(
        stack,
        canceled["slug"],
        [
            ("olga", "owner_assigned", {"owner": seller}),
            ("olga", "job_canceled", {"reason": CANCEL_REASON}),
        ],
    )
    quoted = await stack.new_job(title="Seller's quoted job")
    await drive(stack, quoted["slug"], _to_approved(seller)[:4])
    others = await stack.new_job(title="Other seller's job")
    others = await drive(stack, others["slug"], _to_approved(other))

    await _result(stack, approved["slug"], 1, "sale", {"sale_amount": "600.00"}, seller,
                  Decimal("600.00"))  # fmt: skip
    await _result(stack, approved["slug"], 2, "sale", {"sale_amount": "657.50"}, seller,
                  QUOTE_TOTAL)  # fmt: skip
    await _result(stack, canceled["slug"], 1, "no_sale", {"loss_reason": "Price"}, seller, None)
    await _overdue_for_a_result(stack, quoted["slug"])
    return Seeded(seller, other, approved, canceled, quoted, others)
