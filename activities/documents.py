"""Documents: a job's quote, work receipt and invoice as branded PDFs (DESIGN.md §6).

HTML templates (`templates/documents/`, Jinja2 with autoescaping on) are rendered from the job's
state and the branding settings, then WeasyPrint turns the HTML into a PDF, which is stored by id
(core/documents.py). The workflow passes the state in and gets only the id back (DESIGN.md §3).

User text never reaches anything outside the document. Autoescaping is on, so a title,
description or quote line holding `<img src="file:///etc/passwd">` prints as those characters and
makes no element at all; and WeasyPrint's URL fetcher (activities/pdf.py) serves only the logo,
from memory, and refuses every other URL and file, whoever wrote it. Rendering runs off the
event loop, in a pool of worker processes (activities/pdf.py says why, with the measurements).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import heartbeating
from activities.pdf import Logo, PdfRenderer
from api.users.service import display_name_of
from core import documents, settings_store
from core.company import Company
from core.db import Database
from core.settings_store import BRANDING, COMMUNICATIONS, QUOTES
from models.branding import BrandingSettings, logo_type
from models.communications import CommunicationSettings
from models.documents import RENDER_DOCUMENT, RenderDocument, document_key
from models.events import QuoteLine
from models.lifecycle import JobState
from models.portal import quantity_text, receipt_rows, technician_of, used_parts
from models.quote_display import printed_options, total_rows
from models.quoting import QuoteSettings

log = logging.getLogger("jobline.documents")

TEMPLATES = Path(__file__).resolve().parent / "templates" / "documents"
PDF = "application/pdf"
_templates = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)

# --- HTML -------------------------------------------------------------------------------------


class NotRenderable(Exception):
    """The job has nothing to put in this document yet (no quote, no completion, no invoice)."""


@dataclass(frozen=True)
class RenderedHtml:
    html: str
    filename: str
    title: str


def _lines(lines: list[QuoteLine], company: Company) -> list[dict[str, str]]:
    return [
        {
            "description": line.description,
            "sku": line.sku or "",
            "quantity": quantity_text(line.quantity),
            "unit_price": company.money(line.unit_price),
            "amount": company.money(line.amount),
        }
        for line in lines
    ]


def brand_context(
    company: Company, branding: BrandingSettings, *, has_logo: bool
) -> dict[str, Any]:
    """The letterhead every document prints (base.html's `brand`)."""
    return {
        "company_name": company.name,
        "address": branding.address,
        "contact_line": " · ".join(
            part for part in (branding.phone, branding.email, branding.website) if part
        ),
        "phone": branding.phone,
        "primary_color": branding.primary_color,
        "paper_size": branding.paper_size,
        "footer": branding.footer,
        "logo": has_logo,
    }


def render_template(name: str, context: dict[str, Any]) -> str:
    """One of `templates/documents/` rendered with autoescaping on."""
    return _templates.get_template(name).render(context)


def job_reference(state: JobState) -> str:
    """How documents name the job: its number once it has one, else its slug."""
    return str(state.number) if state.number is not None else state.slug


def document_html(
    request: RenderDocument,
    branding: BrandingSettings,
    comms: CommunicationSettings,
    *,
    has_logo: bool = False,
    at: datetime | None = None,
    technician_name: str | None = None,
    tax_label: str = QuoteSettings().tax_label,
) -> RenderedHtml:
    """The document's HTML and file name. Pure: everything it needs is passed in (the
    technician's display name too: the username stands in without one).

    Times and dates are the company's, with the zone named; amounts carry its currency symbol
    (models/display.py, through core/company.py's Company, as every page shows them)."""
    state = request.state
    company = Company.of(comms, branding)
    now = at or datetime.now(company.zone)
    ref = job_reference(state)
    client = state.client
    contact = [client.email, client.phone]
    body: dict[str, Any] = {}
    footer_note = ""

    if request.kind == "quote":
        quote = state.quote
        if quote is None:
            raise NotRenderable(f"job {state.slug} has no quote to render")
        title = "Quote"
        reference = f"{ref}-Q{quote.version}"
        filename = f"quote-{ref}-v{quote.version}.pdf"
        facts = [
            ("Quote", reference),
            ("Date", company.day(quote.sent_at or state.stage_entered_at or now)),
        ]
        if quote.valid_until:
            facts.append(("Valid until", company.day(quote.valid_until)))
        body = {
            "quote": {
                "notes": quote.notes,
                "valid_until": company.day(quote.valid_until) if quote.valid_until else "",
            },
            # Every option, each with its own lines and figures (models/quote_display.py,
            # as the job page shows them); a quote of one prints as before.
            "options": [
                {
                    "name": o.name,
                    "chosen": o.chosen,
                    "lines": _lines(o.lines, company),
                    "totals": o.rows,
                }
                for o in printed_options(quote, tax_label, company.money)
            ],
            "chosen": quote.chosen,
        }
        client_label = "Prepared for"
    elif request.kind == "invoice":
        invoice = state.invoice
        if invoice is None:
            raise NotRenderable(f"job {state.slug} has no invoice to render")
        title = "Invoice"
        reference = f"INV-{ref}"
        filename = f"invoice-{ref}.pdf"
        facts = [("Invoice", reference), ("Date", company.day(invoice.sent_at)), ("Job", ref)]
        if invoice.po_number:
            facts.append(("PO number", invoice.po_number))
        paid = state.paid_total
        due = max(invoice.total - paid, Decimal("0"))
        totals = total_rows(
            invoice.totals, invoice.discount, invoice.tax_rate, tax_label, company.money
        )
        if paid:
            if len(totals) == 1:
                totals = [("Subtotal", company.money(invoice.total))]
            totals = [
                *totals,
                ("Paid", f"−{company.money(paid)}"),
                ("Amount due", company.money(due)),
            ]
        body = {
            "invoice": {
                "po_number": invoice.po_number or "",
                "amount_due": company.money(due),
                "paid_in_full": due == 0,
            },
            "lines": _lines(invoice.lines, company),
            "totals": totals,
        }
        contact = [invoice.billing_email or client.billing_email or client.email, client.phone]
        client_label = "Bill to"
    else:  # work_receipt
        completion = state.completion
        if completion is None:
            raise NotRenderable(f"job {state.slug} has no completed work to render a receipt for")
        title = "Work receipt"
        reference = f"WR-{ref}"
        filename = f"work-receipt-{ref}.pdf"
        technician = technician_name or technician_of(state)
        facts = [
            ("Receipt", reference),
            ("Completed", company.when(completion.completed_at)),
            ("Technician", technician),
        ]
        body = {
            "receipt": {
                # For the customer: what was done. The technician's notes are internal.
                "work_performed": completion.work_performed,
                "technician": technician,
                "parts_used": [part.model_dump() for part in used_parts(state)],
                "fields": [
                    (row.label, row.display)
                    for row in receipt_rows(completion.fields, request.field_labels)
                ],
            }
        }
        client_label = "Customer"
        footer_note = "Thank you for your business."

    context = {
        "brand": brand_context(company, branding, has_logo=has_logo),
        "doc": {
            "title": title,
            "reference": reference,
            "facts": facts,
            "client_label": client_label,
            "footer_note": footer_note,
        },
        "client": {"name": client.name, "lines": [c for c in contact if c]},
        "job": {
            "title": state.title,
            "description": state.description,
            "site_address": state.site_address,
        },
        **body,
    }
    html = render_template(f"{request.kind}.html", context)
    return RenderedHtml(html=html, filename=filename, title=f"{title} {reference}")


# --- PDF ----------------------------------------------------------------------------------------

_default: PdfRenderer | None = None


def default_renderer() -> PdfRenderer:
    """One process pool per process, shared by every worker built in it."""
    global _default
    if _default is None:
        _default = PdfRenderer()
    return _default


# --- the activity -----------------------------------------------------------------------------


async def load_logo(session: Any, branding: BrandingSettings) -> Logo | None:
    """The branding's logo, if it names a stored image we can print; otherwise no logo (a missing
    or unusable logo never stops a customer's document)."""
    if branding.logo_document_id is None:
        return None
    row = await documents.load(session, branding.logo_document_id)
    content_type = logo_type(row.content) if row is not None else None
    if row is None or row.kind != "logo" or content_type is None:
        log.warning("branding logo %s is not a stored PNG, JPEG or GIF", branding.logo_document_id)
        return None
    return Logo(content=row.content, content_type=content_type)


class DocumentActivities:
    def __init__(self, db: Database, renderer: PdfRenderer | None = None) -> None:
        self.db = db
        self.renderer = renderer or default_renderer()

    @activity.defn(name=RENDER_DOCUMENT)
    async def render_document(self, request: RenderDocument) -> str:
        """Render and store one document; returns its id. A retry (same job, seq and kind)
        returns the id the first attempt stored, and renders nothing."""
        key = document_key(request.state, request.kind)

        async def read(
            session: AsyncSession,
        ) -> str | tuple[BrandingSettings, CommunicationSettings, Logo | None, str, str]:
            existing = await documents.id_for_key(session, key)
            if existing is not None:
                return existing
            stored_settings = await settings_store.stored(session, BRANDING, COMMUNICATIONS, QUOTES)
            branding = settings_store.parsed(stored_settings, BRANDING, BrandingSettings)
            comms = settings_store.parsed(stored_settings, COMMUNICATIONS, CommunicationSettings)
            quotes = settings_store.parsed(stored_settings, QUOTES, QuoteSettings)
            # Customers read the technician's display name, not their username.
            technician = await display_name_of(session, technician_of(request.state))
            logo = await load_logo(session, branding)
            return branding, comms, logo, technician, quotes.tax_label

        found = await self.db.run(read, write=False)
        if isinstance(found, str):
            return found
        branding, comms, logo, technician, tax_label = found
        try:
            rendered = document_html(
                request,
                branding,
                comms,
                has_logo=logo is not None,
                technician_name=technician,
                tax_label=tax_label,
            )
        except NotRenderable as nothing:
            raise ApplicationError(
                str(nothing), type="document_not_renderable", non_retryable=True
            ) from None
        pdf = await heartbeating(self.renderer.render(rendered.html, logo))
        document_id = await self.db.run(
            lambda session: documents.save(
                session,
                pdf,
                kind=request.kind,
                filename=rendered.filename,
                content_type=PDF,
                job_slug=request.state.slug,
                key=key,
            )
        )
        log.info(
            "rendered %s for job %s: document %s (%d bytes)",
            request.kind,
            request.state.slug,
            document_id,
            len(pdf),
        )
        return document_id
