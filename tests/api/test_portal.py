"""The customer's closeout portal (DESIGN.md §6 "Closeout", §8 `GET /portal/{token}`).

The token is the only key: no bearer token is needed, and one does not change anything. A token
shows its own job and serves its own job's receipt; every failure, whatever its reason, is the
same plain 404, so nothing tells a guessed token from an expired one. Links, snapshots and
documents are written here directly, as the closeout activity writes them.
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import uuid4

import httpx
from sqlalchemy import event
from sqlmodel import select

from api.portal.routes import NOT_FOUND_BODY
from api.users.service import create_user
from core import documents, portal, settings_store
from core.config import Settings
from core.portal import token_hash
from core.settings_store import BRANDING, COMMUNICATIONS
from models import display
from models.branding import BrandingSettings
from models.communications import CommunicationSettings
from models.portal import CompletionSnapshot, ReceiptRow, UsedPart
from models.tables import PortalLink, utcnow
from tests.activities.test_documents import png
from tests.conftest import Stack

RECEIPT = b"%PDF-1.7\n% a work receipt\n%%EOF\n"
COMPLETED_AT = datetime(2026, 11, 23, 14, 5, tzinfo=UTC)
PRIVATE_HEADERS = {
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-robots-tag": "noindex, nofollow",
    "x-content-type-options": "nosniff",
}


@dataclass(frozen=True)
class Portal:
    job_slug: str
    token: str
    receipt_id: str | None

    @property
    def page(self) -> str:
        return f"/portal/{self.token}"

    @property
    def receipt(self) -> str:
        return f"/portal/{self.token}/receipt.pdf"


def _slug() -> str:
    return f"pt{uuid4().hex[:8]}"


def _snapshot(job_slug: str, receipt_id: str | None, **fields: Any) -> CompletionSnapshot:
    values: dict[str, Any] = {
        "job_slug": job_slug,
        "job_number": 1042,
        "title": "No cooling, unit 4",
        "site_address": "12 Harbour Road, Unit 4",
        "client_name": "Harbour Dental",
        "technician": "tess",
        "completed_at": COMPLETED_AT,
        "work_performed": "Replaced the run capacitor and cleaned the condenser coil.",
        "parts_used": [
            UsedPart(sku="CAP-45-5", description="Run capacitor 45/5 uF", quantity="1"),
            UsedPart(sku="FLT-16x25", description="Pleated filter 16x25", quantity="2.5"),
        ],
        "fields": [
            ReceiptRow(key="gate_code", label="Gate code", value="4411", display="4411"),
            ReceiptRow(
                key="refrigerant_added", label="Refrigerant added", value=True, display="Yes"
            ),
        ],
        "receipt_document_id": receipt_id,
        **fields,
    }
    return CompletionSnapshot(**values)


async def completed_job(
    stack: Stack,
    *,
    job_slug: str | None = None,
    receipt: bytes | None = RECEIPT,
    receipt_id: str | None = None,
    snapshot: bool = True,
    **fields: Any,
) -> Portal:
    """A completed job as the closeout activity leaves it: a link, a snapshot and (unless told
    otherwise) a work receipt of its own. `receipt_id` points the snapshot at another document."""
    job_slug = job_slug or _slug()
    async with stack.db.session() as session:
        link = await portal.ensure_link(
            session, Settings().secret_key, job_slug, lifetime=timedelta(days=30)
        )
        if receipt_id is None and receipt is not None:
            receipt_id = await documents.save(
                session,
                receipt,
                kind="work_receipt",
                filename="work-receipt-1042.pdf",
                content_type="application/pdf",
                job_slug=job_slug,
            )
        if snapshot:
            await portal.save_snapshot(
                session,
                _snapshot(job_slug, receipt_id, **fields),
                source_key=f"test-{job_slug}-{uuid4().hex}",
                webhook=False,
            )
    return Portal(job_slug=job_slug, token=link.token, receipt_id=receipt_id)


async def _store(stack: Stack, job_slug: str, kind: str = "work_receipt") -> str:
    async with stack.db.session() as session:
        return await documents.save(
            session,
            RECEIPT,
            kind=kind,
            filename=f"{kind}.pdf",
            content_type="application/pdf",
            job_slug=job_slug,
        )


def _has_private_headers(response: httpx.Response) -> None:
    for name, value in PRIVATE_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)


def _not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.text == NOT_FOUND_BODY
    assert response.headers["content-type"].startswith("text/html")
    _has_private_headers(response)
    assert "default-src 'none'" in response.headers["content-security-policy"]


async def _expected_company(stack: Stack) -> tuple[str, CommunicationSettings]:
    """The name and zone the portal prints, from whatever settings other tests left behind."""
    async with stack.db.session() as session:
        branding = await settings_store.load(session, BRANDING, BrandingSettings)
        comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    return branding.company_name or comms.company_name, comms


async def test_the_page_shows_the_completed_job(stack: Stack) -> None:
    job = await completed_job(stack)
    response = await stack.http.get(job.page)  # no Authorization header: the token is the key
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text

    company, comms = await _expected_company(stack)
    completed = display.when(COMPLETED_AT, comms.zone)  # e.g. "Mon 23 Nov 2026, 14:05 UTC"
    for shown in (
        company,
        "No cooling, unit 4",
        "Job 1042",
        "12 Harbour Road, Unit 4",
        "Harbour Dental",
        completed,
        "tess",
        "Replaced the run capacitor and cleaned the condenser coil.",
        '<td>CAP-45-5</td><td>Run capacitor 45/5 uF</td><td class="qty">1</td>',
        '<td>FLT-16x25</td><td>Pleated filter 16x25</td><td class="qty">2.5</td>',
        "<dt>Gate code</dt><dd>4411</dd>",
        "<dt>Refrigerant added</dt><dd>Yes</dd>",
        "This link is private to your job and works until",
    ):
        assert shown in page, shown
    # Relative to /portal/, so it works behind any public URL.
    assert f'href="{job.token}/receipt.pdf"' in page
    assert "Download your work receipt (PDF)" in page


async def test_the_page_speaks_the_companys_time_and_the_technicians_name(stack: Stack) -> None:
    """A company in New York: the completion time in EST with the zone named (and in EDT in
    summer); the technician by display name, while the snapshot keeps the username."""
    technician = f"tina{uuid4().hex[:6]}"
    async with stack.db.session() as session:
        await create_user(session, technician, "technician", display_name="Tina Tran")
        before = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
        new_york = before.model_copy(update={"timezone": "America/New_York"})
        await settings_store.save(session, COMMUNICATIONS, new_york, "test")
    try:
        winter = await completed_job(stack, technician=technician)
        summer = await completed_job(
            stack, technician=technician, completed_at=datetime(2026, 7, 14, 15, 30, tzinfo=UTC)
        )
        winter_page = (await stack.http.get(winter.page)).text
        summer_page = (await stack.http.get(summer.page)).text
    finally:
        async with stack.db.session() as session:
            await settings_store.save(session, COMMUNICATIONS, before, "test")
    # 14:05 UTC on 23 November is 09:05 in New York (EST, UTC-5).
    assert "<dt>Completed</dt><dd>Mon 23 Nov 2026, 09:05 EST</dd>" in winter_page, winter_page
    assert "<dt>Completed</dt><dd>Tue 14 Jul 2026, 11:30 EDT</dd>" in summer_page, summer_page
    assert re.search(r"works until \w{3} \d+ \w{3} \d{4}, \d\d:\d\d E[SD]T", winter_page)
    for page in (winter_page, summer_page):
        assert "<dt>Technician</dt><dd>Tina Tran</dd>" in page
        assert technician not in page


async def test_the_branding_logo_is_inlined_in_the_page(stack: Stack) -> None:
    job = await completed_job(stack)
    async with stack.db.session() as session:
        before = await settings_store.load(session, BRANDING, BrandingSettings)
    logo = png()
    uploaded = await stack.http.post(
        "/api/v1/settings/branding/logo",
        headers=stack.auth("ada"),
        files={"file": ("logo.png", logo, "image/png")},
    )
    assert uploaded.status_code == 200, uploaded.text
    try:
        page = (await stack.http.get(job.page)).text
    finally:
        async with stack.db.session() as session:
            await settings_store.save(session, BRANDING, before, "test")
    # A data: URI: the page makes no request of its own (its CSP allows no other image source).
    [src] = re.findall(r'<img class="logo" src="([^"]+)"', page)
    assert src == "data:image/png;base64," + base64.b64encode(logo).decode()


async def test_the_page_shows_the_latest_snapshot(stack: Stack) -> None:
    job = await completed_job(stack, work_performed="First visit: diagnosed the fault.")
    async with stack.db.session() as session:
        await portal.save_snapshot(
            session,
            _snapshot(job.job_slug, job.receipt_id, work_performed="Second visit: fixed it."),
            source_key=f"test-{job.job_slug}-again",
            webhook=False,
        )
    page = (await stack.http.get(job.page)).text
    assert "Second visit: fixed it." in page
    assert "First visit" not in page


async def test_the_receipt_is_the_stored_pdf(stack: Stack) -> None:
    job = await completed_job(stack)
    response = await stack.http.get(job.receipt)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith(
        'inline; filename="work-receipt-1042.pdf"'
    )
    assert response.content == RECEIPT
    assert int(response.headers["content-length"]) == len(RECEIPT)
    _has_private_headers(response)


async def test_a_job_without_a_receipt_has_no_receipt_link(stack: Stack) -> None:
    job = await completed_job(stack, receipt=None)
    response = await stack.http.get(job.page)
    assert response.status_code == 200, response.text
    assert "receipt.pdf" not in response.text
    assert "Download your work receipt" not in response.text
    _not_found(await stack.http.get(job.receipt))


async def test_a_link_before_its_snapshot_opens_nothing(stack: Stack) -> None:
    job = await completed_job(stack, snapshot=False)
    _not_found(await stack.http.get(job.page))
    _not_found(await stack.http.get(job.receipt))


async def test_a_wrong_token_is_a_plain_404(stack: Stack) -> None:
    await completed_job(stack)
    wrong = secrets.token_urlsafe(32)  # the right shape, 43 characters, names no link
    assert portal.TOKEN_SHAPE.fullmatch(wrong)
    _not_found(await stack.http.get(f"/portal/{wrong}"))
    _not_found(await stack.http.get(f"/portal/{wrong}/receipt.pdf"))


async def test_malformed_tokens_are_the_same_404_without_a_lookup(stack: Stack) -> None:
    job = await completed_job(stack)
    malformed = [
        "short",
        job.token[:-1],
        job.token + "A",
        job.token + "=",
        job.token + "%0A",
        job.token + "%20",
        "é" * 43,
        "%2e%2e",
        "A" * 10_000,
        f"{job.token[:-1]}%00",
    ]
    looked_up: list[str] = []

    def _record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        looked_up.append(f"{statement} {parameters!r}")

    engine = stack.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", _record)
    try:
        for token in malformed:
            _not_found(await stack.http.get(f"/portal/{token}"))
            _not_found(await stack.http.get(f"/portal/{token}/receipt.pdf"))
        # Paths that are no token at all, and ones that try to climb out of the job.
        for path in (
            "/portal/",
            f"/portal/{job.token}/",
            f"/portal/{job.token}/..%2F..%2Fapi%2Fv1%2Fclients",
            f"/portal/{job.token}%2F..%2F{job.token}",
            f"/portal/{job.token}/receipt.pdf/extra",
            f"/portal/{job.token}/invoice.pdf",
            f"/portal/{job.token}/../{job.token}/receipt.pdf%00",
        ):
            _not_found(await stack.http.get(path))
        assert (await stack.http.get(job.page)).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", _record)
    # The shape is checked first: not one malformed token reached the database (while the
    # good one did, so the listener saw the lookups).
    hashes = {token_hash(unquote(token)) for token in malformed}
    assert not [query for query in looked_up if any(h in query for h in hashes)]
    assert [query for query in looked_up if token_hash(job.token) in query]


async def test_an_expired_link_is_the_same_404_as_a_wrong_one(stack: Stack) -> None:
    job = await completed_job(stack)
    assert (await stack.http.get(job.page)).status_code == 200
    async with stack.db.session() as session:
        link = (
            await session.exec(select(PortalLink).where(PortalLink.job_slug == job.job_slug))
        ).one()
        link.expires_at = utcnow() - timedelta(seconds=1)
        session.add(link)
    expired = await stack.http.get(job.page)
    wrong = await stack.http.get(f"/portal/{secrets.token_urlsafe(32)}")
    _not_found(expired)
    _not_found(wrong)
    assert expired.content == wrong.content
    assert expired.headers["content-type"] == wrong.headers["content-type"]
    _not_found(await stack.http.get(job.receipt))


async def test_a_token_reaches_nothing_of_another_job(stack: Stack) -> None:
    other = await completed_job(stack, title="Boiler of another customer")
    # A's snapshot names B's receipt (a bug, or a tampered row): A's token still cannot fetch it.
    job = await completed_job(stack, receipt_id=other.receipt_id)
    _not_found(await stack.http.get(job.receipt))
    page = (await stack.http.get(job.page)).text
    assert "another customer" not in page
    # Nor does a document of its own job that is not a work receipt come out as one.
    quote = await _store(stack, job.job_slug, kind="quote")
    wrong_kind = await completed_job(stack, job_slug=job.job_slug, receipt_id=quote)
    _not_found(await stack.http.get(wrong_kind.receipt))
    # B's own token still serves B's receipt.
    response = await stack.http.get(other.receipt)
    assert response.status_code == 200
    assert "Boiler of another customer" in (await stack.http.get(other.page)).text


async def test_customer_and_technician_text_prints_as_text(stack: Stack) -> None:
    job = await completed_job(
        stack,
        title="<b>Leak</b>",
        work_performed='<script>alert("x")</script><img src=x onerror=alert(1)>',
        site_address='"></dd><iframe src="https://evil.example"></iframe>',
        parts_used=[UsedPart(sku="<i>SKU</i>", description="<a href=x>part</a>", quantity="1")],
        fields=[ReceiptRow(key="k", label="<u>Label</u>", value="<s>v</s>", display="<s>v</s>")],
    )
    page = (await stack.http.get(job.page)).text
    script = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    assert script + "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;Leak&lt;/b&gt;" in page
    assert "&lt;iframe" in page
    assert "&lt;i&gt;SKU&lt;/i&gt;" in page and "&lt;a href=x&gt;part&lt;/a&gt;" in page
    assert "&lt;u&gt;Label&lt;/u&gt;" in page and "&lt;s&gt;v&lt;/s&gt;" in page
    for markup in ("<script", "<img", "<iframe", "<b>", "<i>", "<a href=x", "<u>", "<s>"):
        assert markup not in page, markup


async def test_every_portal_response_carries_the_privacy_headers(stack: Stack) -> None:
    job = await completed_job(stack)
    page = await stack.http.get(job.page)
    _has_private_headers(page)
    policy = page.headers["content-security-policy"]
    for directive in (
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ):
        assert directive in policy, directive
    _has_private_headers(await stack.http.get(job.receipt))
    _has_private_headers(await stack.http.get(f"/portal/{secrets.token_urlsafe(32)}"))


async def test_a_staff_bearer_token_changes_nothing(stack: Stack) -> None:
    job = await completed_job(stack)
    anonymous = await stack.http.get(job.page)
    for username in ("ada", "tess"):
        as_staff = await stack.http.get(job.page, headers=stack.auth(username))
        assert as_staff.status_code == 200
        assert as_staff.text == anonymous.text
        receipt = await stack.http.get(job.receipt, headers=stack.auth(username))
        assert receipt.content == RECEIPT
        # Staff still need the token: no token, no job.
        _not_found(
            await stack.http.get(
                f"/portal/{secrets.token_urlsafe(32)}", headers=stack.auth(username)
            )
        )
    # A broken bearer token is no reason to refuse the customer either.
    response = await stack.http.get(job.page, headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200


async def test_the_portal_takes_no_payments_and_runs_no_scripts(stack: Stack) -> None:
    page = (await stack.http.get((await completed_job(stack)).page)).text
    assert "<form" not in page
    assert "<button" not in page
    assert "<script" not in page
    assert not re.search(r"\bpay(ment|ments)?\b", page, re.IGNORECASE)


async def test_head_works_and_other_methods_do_not(stack: Stack) -> None:
    job = await completed_job(stack)
    head = await stack.http.head(job.page)
    assert head.status_code == 200
    assert head.headers["content-type"].startswith("text/html")
    assert (await stack.http.head(job.receipt)).headers["content-type"] == "application/pdf"
    assert (await stack.http.head(f"/portal/{secrets.token_urlsafe(32)}")).status_code == 404
    for method in ("POST", "PUT", "DELETE"):
        assert (await stack.http.request(method, job.page)).status_code == 405


async def test_openapi_lists_the_portal_without_bearer_auth(stack: Stack) -> None:
    spec = (await stack.http.get("/openapi.json")).json()
    for path in ("/portal/{token}", "/portal/{token}/receipt.pdf"):
        operation = spec["paths"][path]["get"]
        assert operation["tags"] == ["portal"]
        assert not operation.get("security")
        assert "404" in operation["responses"]
    assert "/portal/{rest}" not in spec["paths"]
