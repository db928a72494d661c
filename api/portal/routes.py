"""The customer's closeout portal (DESIGN.md §6 "Closeout", §8): `GET /portal/{token}` shows a
completed job, `GET /portal/{token}/receipt.pdf` serves its work receipt.

No bearer token: the portal token is the key, and it opens one job only. Every way a request can
fail (malformed, unknown or expired token, no snapshot yet, no receipt, a receipt that is not this
job's) gets the same plain 404, so the answer never says whether a token ever existed. The token
is in the URL, so no response may be cached, indexed or leak it through a Referer header. The
portal shows and serves; it takes no payments and changes nothing.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from api import customer_pages
from api.deps import SessionDep, SettingsDep
from api.documents.routes import content_disposition
from api.users.service import display_name_of
from core import documents, portal
from core.company import Company, load_company
from models.branding import BrandingSettings, logo_type
from models.portal import CompletionSnapshot

router = APIRouter(tags=["portal"])

_templates = customer_pages.templates(FilePath(__file__).resolve().parent / "templates")

PRIVATE_HEADERS = customer_pages.PRIVATE_HEADERS
# The page shows and links; it has no forms.
PAGE_HEADERS = customer_pages.page_headers(form_action="'none'")
NOT_FOUND_BODY = customer_pages.not_found_body("the company that did the work")
TokenPath = Annotated[str, Path(description="The token from the closeout message's link")]


def not_found() -> HTMLResponse:
    return HTMLResponse(NOT_FOUND_BODY, status_code=404, headers=PAGE_HEADERS)


@dataclass(frozen=True)
class OpenPortal:
    job_slug: str
    expires_at: datetime
    snapshot: CompletionSnapshot


async def _open(session: AsyncSession, secret_key: str, token: str) -> OpenPortal | None:
    """The job an open link's token shows, or None for every kind of failure alike."""
    link = await portal.open_link(session, secret_key, token)
    if link is None:
        return None
    job_slug = link.job_slug
    row = await portal.latest_snapshot(session, job_slug)
    if row is None:
        return None
    return OpenPortal(
        job_slug=job_slug,
        expires_at=link.expires_at,
        snapshot=CompletionSnapshot.model_validate(row.data),
    )


async def _logo(session: AsyncSession, branding: BrandingSettings) -> str | None:
    """The branding logo as a data: URI (the page fetches nothing else), or None."""
    if branding.logo_document_id is None:
        return None
    row = await documents.load(session, branding.logo_document_id)
    content_type = logo_type(row.content) if row is not None else None
    if row is None or row.kind != "logo" or content_type is None:
        return None
    return f"data:{content_type};base64,{base64.b64encode(row.content).decode()}"


def _page(
    token: str, opened: OpenPortal, company: Company, logo: str | None, technician: str
) -> str:
    """The page; times in the company's zone with the zone named, the technician by the name
    customers know them by."""
    snapshot = opened.snapshot
    branding = company.branding
    contact = [part for part in (branding.phone, branding.email, branding.website) if part]
    return _templates.get_template("portal.html").render(
        brand={
            "company_name": company.name,
            "address": branding.address,
            "contact": contact,
            "primary_color": branding.primary_color,
            "logo": logo,
        },
        job={
            "reference": snapshot.job_slug if snapshot.job_number is None else snapshot.job_number,
            "title": snapshot.title,
            "site_address": snapshot.site_address,
            "client_name": snapshot.client_name,
            "technician": technician,
            "completed_at": company.when(snapshot.completed_at),
            "work_performed": snapshot.work_performed,
            "parts_used": snapshot.parts_used,
            "fields": snapshot.fields,
        },
        # Relative to /portal/, so the link works behind whatever public URL serves the page.
        receipt_href=f"{token}/receipt.pdf" if snapshot.receipt_document_id else None,
        expires_at=company.when(opened.expires_at),
    )


@router.get(
    "/portal/{token}",
    response_class=HTMLResponse,
    summary="The customer's closeout page for one completed job",
    responses={404: {"description": "Not a valid link (the same answer for every reason)"}},
)
@router.head("/portal/{token}", include_in_schema=False)
async def portal_page(session: SessionDep, settings: SettingsDep, token: TokenPath) -> Response:
    opened = await _open(session, settings.secret_key, token)
    if opened is None:
        return not_found()
    company = await load_company(session)
    logo = await _logo(session, company.branding)
    # The snapshot keeps the username (the webhook's receiver matches on it); people read the
    # display name, as it is now.
    technician = await display_name_of(session, opened.snapshot.technician)
    page = _page(token, opened, company, logo, technician)
    return HTMLResponse(page, headers=PAGE_HEADERS)


@router.get(
    "/portal/{token}/receipt.pdf",
    response_class=Response,
    summary="The completed job's work receipt",
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The work receipt PDF"},
        404: {"description": "Not a valid link, or no receipt (the same answer for both)"},
    },
)
@router.head("/portal/{token}/receipt.pdf", include_in_schema=False)
async def portal_receipt(session: SessionDep, settings: SettingsDep, token: TokenPath) -> Response:
    opened = await _open(session, settings.secret_key, token)
    document_id = opened.snapshot.receipt_document_id if opened else None
    if opened is None or document_id is None:
        return not_found()
    row = await documents.load(session, document_id)
    # Defence in depth: whatever a snapshot names, a token serves only its own job's receipt.
    if row is None or row.job_slug != opened.job_slug or row.kind != "work_receipt":
        return not_found()
    return Response(
        content=row.content,
        media_type="application/pdf",
        headers={**PRIVATE_HEADERS, "Content-Disposition": content_disposition(row.filename, True)},
    )


@router.api_route("/portal/{rest:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def portal_elsewhere() -> Response:
    """Anything else under /portal/ (a token with a slash in it, a made-up sub-path) gets the
    portal's own 404, not the API's JSON one."""
    return not_found()
