"""What the customer's quote page (`/q/{token}`, api/quotes/routes.py) shows, read from the job.

A link names one job and one quote version. The page is in one of these states:

- `open`: the job waits on this version's answer (`quote_sent`): approve or decline;
- `declined`: the customer (or the office) declined it (`saving`); it may still be approved;
- `approved`: this version was approved: who signed, when, the option and the job's number;
- `superseded`: a newer version has been drafted since this link was sent: no actions;
- `closed`: the job was canceled or closed, or moved on without this quote's answer.

Everything here only reads; the answer goes to the job as an event (routes.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from core import documents, quote_links
from core.company import Company
from core.quote_links import Link
from models.branding import logo_type
from models.lifecycle import FINAL_STAGES, JobState, Quote, Stage
from models.quote_display import PrintedOption, printed_options
from models.quoting import QuoteSettings
from models.tables import Document, Job, JobEvent

State = Literal["open", "declined", "approved", "superseded", "closed"]
# Stages in which this version's answer is still welcome.
ANSWERABLE = frozenset({Stage.quote_sent, Stage.saving})


@dataclass(frozen=True)
class Opened:
    """An open link and the job it names, as it is now."""

    link: Link
    job: Job
    state: JobState

    @property
    def quote(self) -> Quote | None:
        """The quote version the link was sent with (the current one, or an earlier one)."""
        current = self.state.quote
        if current is not None and current.version == self.link.version:
            return current
        return next((q for q in self.state.earlier_quotes if q.version == self.link.version), None)

    @property
    def page_state(self) -> State:
        current = self.state.quote
        assert current is not None
        if current.version != self.link.version:
            return "superseded"
        if self.state.stage in FINAL_STAGES:
            return "closed"
        if self.state.contract_amount is not None and current.chosen is not None:
            return "approved"
        if self.state.stage not in ANSWERABLE:
            return "closed"
        return "declined" if self.state.stage == Stage.saving else "open"

    @property
    def options(self) -> list[str]:
        quote = self.quote
        return [o.key for o in quote.options] if quote is not None else []


async def open_quote(session: AsyncSession, secret_key: str, token: str) -> Opened | None:
    """The job and quote an open link's token shows; None for every kind of failure alike."""
    link = await quote_links.open_link(session, secret_key, token)
    if link is None:
        return None
    job = await session.get(Job, link.job_slug)
    if job is None:
        return None
    state = JobState.model_validate(job.state)
    opened = Opened(link=link, job=job, state=state)
    if state.quote is None or opened.quote is None:
        return None
    return opened


async def _logo(session: AsyncSession, company: Company) -> str | None:
    """The branding logo as a data: URI (the page fetches nothing else), or None."""
    document_id = company.branding.logo_document_id
    row = await documents.load(session, document_id) if document_id else None
    content_type = logo_type(row.content) if row is not None else None
    if row is None or row.kind != "logo" or content_type is None:
        return None
    return f"data:{content_type};base64,{base64.b64encode(row.content).decode()}"


async def _last_event(session: AsyncSession, slug: str, type_: str) -> JobEvent | None:
    rows = await session.exec(
        select(JobEvent)
        .where(JobEvent.job_slug == slug, JobEvent.type == type_)
        .order_by(col(JobEvent.seq).desc())
        .limit(1)
    )
    return rows.first()


async def quote_document(session: AsyncSession, slug: str, version: int) -> Document | None:
    """The PDF sent with this version of the quote: the document the `quote_sent` event that
    sent it rendered (keyed `job-<slug>:<seq>:quote`, models/documents.py)."""
    events = await session.exec(
        select(JobEvent.seq, JobEvent.type)
        .where(
            JobEvent.job_slug == slug,
            col(JobEvent.type).in_(["quote_drafted", "quote_sent"]),
        )
        .order_by(col(JobEvent.seq))
    )
    drafted = 0
    sent_seq: int | None = None
    for seq, type_ in events.all():
        if type_ == "quote_drafted":
            drafted += 1
        elif drafted == version:
            sent_seq = seq  # the last sending of this version
    if sent_seq is None:
        return None
    document_id = await documents.id_for_key(session, f"job-{slug}:{sent_seq}:quote")
    if document_id is None:
        return None
    row = await documents.load(session, document_id)
    if row is None or row.job_slug != slug or row.kind != "quote":
        return None
    return row


@dataclass
class Problems:
    """A refused answer: the words at the top, and the same words at their field."""

    summary: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def _option_view(option: PrintedOption, company: Company) -> dict[str, Any]:
    """One option as the page prints it: its lines, and the rows under them (subtotal, discount,
    tax with its label and rate, total) exactly as the PDF and the job page print them."""
    return {
        "key": option.key,
        "name": option.name,
        "lines": [
            {
                "description": line.description,
                "quantity": f"{line.quantity.normalize():f}",
                "unit_price": company.money(line.unit_price),
                "amount": company.money(line.amount),
            }
            for line in option.lines
        ],
        "totals": option.rows,
        "total": company.money(option.totals.total),
    }


async def context(
    session: AsyncSession,
    opened: Opened,
    company: Company,
    settings: QuoteSettings,
    *,
    token: str,
    form_key: str,
    values: dict[str, str] | None = None,
    problems: Problems | None = None,
) -> dict[str, Any]:
    """Everything the template prints: money with the currency symbol, times in the company's
    zone with the zone named."""
    state = opened.state
    quote = opened.quote
    assert quote is not None and state.quote is not None
    page_state = opened.page_state
    answered: dict[str, str] | None = None
    if page_state == "approved":
        row = await _last_event(session, state.slug, "quote_approved")
        payload = row.payload if row is not None else {}
        chosen = quote.option(quote.chosen)
        answered = {
            "signature_name": str(payload.get("signature_name") or ""),
            "at": company.when(row.at) if row is not None else "",
            "option": chosen.name if chosen is not None and len(quote.options) > 1 else "",
            "total": company.money(quote.total),
            "number": str(state.number) if state.number is not None else "",
        }
    elif page_state == "declined":
        row = await _last_event(session, state.slug, "quote_declined")
        payload = row.payload if row is not None else {}
        answered = {
            "reason": str(payload.get("reason") or ""),
            "at": company.when(row.at) if row is not None else "",
        }
    document = await quote_document(session, state.slug, quote.version)
    contact = [p for p in (company.branding.phone, company.branding.email) if p]
    contact += [company.branding.website] if company.branding.website else []
    return {
        "brand": {
            "company_name": company.name,
            "address": company.branding.address,
            "contact": contact,
            "primary_color": company.branding.primary_color,
            "logo": await _logo(session, company),
        },
        "job": {
            "title": state.title,
            "site_address": state.site_address,
            "client_name": state.client.name,
        },
        "quote": {
            "version": quote.version,
            "valid_until": company.day(quote.valid_until) if quote.valid_until else "",
            "sent_at": company.when(quote.sent_at) if quote.sent_at else "",
            "notes": quote.notes,
            "several": len(quote.options) > 1,
            "options": [
                _option_view(o, company)
                for o in printed_options(quote, settings.tax_label, company.money)
            ],
            "newest_version": state.quote.version,
        },
        "page_state": page_state,
        "answered": answered,
        "pdf_href": f"{token}/quote.pdf" if document is not None else None,
        "action": token,  # relative to /q/, like the PDF link
        "form_key": form_key,
        "values": values or {},
        "problems": problems or Problems(),
        "expires_at": company.when(opened.link.expires_at),
    }
