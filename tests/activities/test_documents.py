"""Documents: quote, work receipt and invoice PDFs rendered from a job's state (DESIGN.md §6).

Real WeasyPrint in real worker processes, stored in SQLite and PostgreSQL; the text is read back
out of the PDFs with pypdf. The security tests run a tiny HTTP server on 127.0.0.1 and count what
reaches it: nothing may, whatever a job's text holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import io
import os
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import psutil
import pytest
from pydantic import ValidationError
from pypdf import PdfReader
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from weasyprint import HTML

from activities.documents import DocumentActivities, default_renderer, document_html
from activities.pdf import (
    RENDER_NICENESS,
    Logo,
    MemoryOnlyFetcher,
    PdfRenderer,
    _parsed,
    render_pdf_sync,
)
from api.users.service import create_user
from core import documents, settings_store
from core.db import Database
from core.settings_store import BRANDING, COMMUNICATIONS
from models.branding import BrandingSettings
from models.communications import CommunicationSettings
from models.documents import RenderDocument, document_key
from models.events import PartLine, PartUsed, QuoteLine
from models.lifecycle import (
    ClientSnapshot,
    Completion,
    Invoice,
    JobState,
    PartOrder,
    Payment,
    Quote,
    Schedule,
    Stage,
)
from models.tables import Document

AT = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
BRAND = BrandingSettings(
    company_name="Acme Cooling & Heating",
    address="12 Main Street\nSpringfield, IL 62701",
    phone="+1 217 555 0199",
    email="office@acme-cooling.example",
    primary_color="#0b6e4f",
    footer="License #HVAC-44821",
)


def pdf_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def flat(text: str) -> str:
    return " ".join(text.split())


def png(width: int = 40, height: int = 20, rgb: tuple[int, int, int] = (11, 110, 79)) -> bytes:
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def job(text: str = "", line_text: str = "", **changes: Any) -> JobState:
    """A job with a quote, parts, a visit, the work done, an invoice and a part payment.
    `text` is added to every field a person types, `line_text` to a quote line's description
    (at most 200 characters, as the API takes)."""
    slug = uuid.uuid4().hex[:8]
    lines = [
        QuoteLine(
            description=f"Replace compressor contactor{line_text}",
            quantity=Decimal("1"),
            unit_price=Decimal("145.00"),
            sku="CT-40A",
        ),
        QuoteLine(
            description="Condenser coil clean", quantity=Decimal("2.5"), unit_price=Decimal("89.50")
        ),
    ]
    total = sum((line.amount for line in lines), Decimal("0"))  # 145.00 + 223.75 = 368.75
    state = JobState(
        slug=slug,
        client=ClientSnapshot(
            id=1,
            name=f"Harbor View Apartments{text}",
            email="manager@harborview.example",
            phone="+1 555 0100",
            billing_email="ap@harborview.example",
        ),
        stage=Stage.invoiced,
        seq=14,
        created_at=AT,
        stage_entered_at=AT,
        title=f"No cooling, unit 4{text}",
        description=f"Tenant reports warm air.{text}",
        site_address=f"1200 Harbor Blvd, Unit 4{text}",
        number=1042,
        quote=Quote(
            version=2,
            lines=lines,
            total=total,
            valid_until=date(2026, 12, 20),
            notes=f"Parts warranty 12 months.{text}",
            sent_at=AT,
        ),
        parts=[
            PartOrder(
                line=PartLine(
                    sku="CT-40A",
                    description="Contactor 40A 24V coil",
                    quantity=1,
                    supplier="Ferguson",
                    po_number="PO-7781",
                    expected_delivery=date(2026, 11, 22),
                ),
                ordered_at=AT,
                delivered_at=AT,
            )
        ],
        schedule=Schedule(technician="tess", window_start=AT, window_end=AT),
        completion=Completion(
            work_performed=f"Replaced the contactor and cleaned the coil.{text}",
            notes=f"Change the filter in 3 months.{text}",
            parts_used=[PartUsed(sku="CT-40A", quantity=Decimal("1"))],
            fields={"gate_code": f"4411{text}", "filters_replaced": True},
            completed_by="tess",
            completed_at=AT,
        ),
        invoice=Invoice(
            lines=lines,
            total=total,
            billing_email="ap@harborview.example",
            po_number="HV-2291",
            sent_at=AT,
        ),
        payments=[
            Payment(amount=Decimal("100.00"), method="card", recorded_by="olga", recorded_at=AT)
        ],
    )
    return state.model_copy(update=changes)


@contextlib.asynccontextmanager
async def branding(db: Database, value: BrandingSettings | None):
    """Branding settings for one test; what was there before is put back after."""
    async with db.session() as session:
        before = await settings_store.load(session, BRANDING, BrandingSettings)
        if value is not None:
            await settings_store.save(session, BRANDING, value, "test")
    try:
        yield
    finally:
        async with db.session() as session:
            await settings_store.save(session, BRANDING, before, "test")


async def load(db: Database, document_id: str) -> Document:
    async with db.session() as session:
        row = await documents.load(session, document_id)
    assert row is not None
    return row


# --- each kind prints what it is for -----------------------------------------------------------

EXPECTED = {
    "quote": (
        "quote-1042-v2.pdf",
        ["QUOTE", "1042-Q2", "PREPARED FOR", "Valid until Sun 20 Dec 2026", "Total $368.75"],
    ),
    "work_receipt": (
        "work-receipt-1042.pdf",
        [
            "WORK RECEIPT",
            "WR-1042",
            "Replaced the contactor and cleaned the coil.",
            "Contactor 40A 24V coil",
            "Gate code 4411",
            "Filters replaced? Yes",
            "Completed Fri 20 Nov 2026, 15:30 UTC",
            "Technician tess",
        ],
    ),
    "invoice": (
        "invoice-1042.pdf",
        [
            "INVOICE",
            "INV-1042",
            "BILL TO",
            "ap@harborview.example",
            "HV-2291",
            "Subtotal $368.75",
            "Paid −$100.00",
            "Amount due $268.75",
        ],
    ),
}


@pytest.mark.parametrize("kind", ["quote", "work_receipt", "invoice"])
async def test_each_kind_prints_company_client_lines_and_totals(
    database: Database, kind: str
) -> None:
    state = job()
    async with branding(database, BRAND):
        document_id = await DocumentActivities(database).render_document(
            RenderDocument(
                state=state, kind=kind, field_labels={"filters_replaced": "Filters replaced?"}
            )
        )
    row = await load(database, document_id)
    filename, expected = EXPECTED[kind]
    assert (row.kind, row.filename, row.content_type) == (kind, filename, "application/pdf")
    assert row.job_slug == state.slug
    assert row.content.startswith(b"%PDF-") and row.size == len(row.content)
    assert len(document_id) == 32 and int(document_id, 16) >= 0
    text = flat(pdf_text(row.content))
    for wanted in [
        "Acme Cooling & Heating",
        "12 Main Street",
        "+1 217 555 0199",
        "Harbor View Apartments",
        "No cooling, unit 4",
        "1200 Harbor Blvd, Unit 4",
        "License #HVAC-44821",
        *expected,
    ]:
        assert wanted in text, f"{wanted!r} missing from the {kind}: {text}"
    if kind != "work_receipt":
        for line in ("Replace compressor contactor CT-40A 1 $145.00 $145.00", "2.5 $89.50 $223.75"):
            assert line in text, text


async def test_the_company_name_defaults_to_the_communication_settings(database: Database) -> None:
    async with database.session() as session:
        comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    html = document_html(RenderDocument(state=job(), kind="quote"), BrandingSettings(), comms)
    assert f'<div class="name">{comms.company_name}</div>' in html.html


@contextlib.asynccontextmanager
async def communications(db: Database, value: CommunicationSettings):
    """Communication settings for one test; what was there before is put back after."""
    async with db.session() as session:
        before = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
        await settings_store.save(session, COMMUNICATIONS, value, "test")
    try:
        yield
    finally:
        async with db.session() as session:
            await settings_store.save(session, COMMUNICATIONS, before, "test")


@pytest.mark.parametrize(
    ("completed_at", "local"),
    [
        # 15:30 UTC in November is 10:30 in New York (EST, UTC-5); in July, 11:30 (EDT, UTC-4).
        (AT, "Completed Fri 20 Nov 2026, 10:30 EST"),
        (datetime(2026, 7, 14, 15, 30, tzinfo=UTC), "Completed Tue 14 Jul 2026, 11:30 EDT"),
    ],
)
async def test_times_are_the_companys_with_the_zone_named_and_people_by_display_name(
    database: Database, completed_at: datetime, local: str
) -> None:
    """The work receipt in the company's zone, the zone named; the technician as customers know
    them (their display name), the company's one name, and amounts with its currency symbol."""
    technician = f"tech{uuid.uuid4().hex[:6]}"
    async with database.session() as session:
        await create_user(session, technician, "technician", display_name="Tess Turner")
    state = job(
        completion=job().completion.model_copy(  # type: ignore[union-attr]
            update={"completed_at": completed_at, "completed_by": technician}
        ),
        schedule=Schedule(technician=technician, window_start=AT, window_end=AT),
    )
    new_york = CommunicationSettings(company_name="Acme (comms)", timezone="America/New_York")
    activities = DocumentActivities(database)
    euro = BRAND.model_copy(update={"currency_symbol": "€", "company_name": None})
    async with communications(database, new_york), branding(database, euro):
        receipt = await activities.render_document(RenderDocument(state=state, kind="work_receipt"))
        invoice = await activities.render_document(RenderDocument(state=state, kind="invoice"))
    text = flat(pdf_text((await load(database, receipt)).content))
    assert local in text, text
    assert "Technician Tess Turner" in text and technician not in text, text
    # No company name in the branding: the communication settings' one, on every document.
    assert "Acme (comms)" in text
    billed = flat(pdf_text((await load(database, invoice)).content))
    assert "Date Fri 20 Nov 2026" in billed, billed
    for amount in ("Subtotal €368.75", "Paid −€100.00", "Amount due €268.75", "2.5 €89.50 €223.75"):
        assert amount in billed, billed
    assert "$" not in billed


async def test_nothing_to_render_is_refused_for_good(database: Database) -> None:
    with pytest.raises(ApplicationError) as refused:
        await DocumentActivities(database).render_document(
            RenderDocument(state=job(quote=None), kind="quote")
        )
    assert refused.value.type == "document_not_renderable"
    assert refused.value.non_retryable


# --- idempotent by (job, seq, kind) -----------------------------------------------------------


async def test_a_retried_render_returns_the_first_document(database: Database) -> None:
    activities = DocumentActivities(database)
    state = job()
    request = RenderDocument(state=state, kind="work_receipt")
    first = await activities.render_document(request)
    again = await activities.render_document(request)
    # Two attempts at once (a retry racing a slow first attempt): one document.
    racing = await asyncio.gather(
        *(activities.render_document(RenderDocument(state=state, kind="invoice")) for _ in range(3))
    )
    assert first == again
    assert len(set(racing)) == 1 and racing[0] != first
    later = await activities.render_document(
        RenderDocument(state=state.model_copy(update={"seq": state.seq + 1}), kind="work_receipt")
    )
    assert later != first
    async with database.session() as session:
        for kind, count in (("work_receipt", 2), ("invoice", 1)):
            rows = await session.exec(
                select(Document.id).where(Document.job_slug == state.slug, Document.kind == kind)
            )
            assert len(rows.all()) == count
        stored = await documents.load(session, first)
    assert stored is not None and stored.idempotency_key == document_key(state, "work_receipt")


# --- the logo ----------------------------------------------------------------------------------


async def test_the_logo_comes_from_the_document_store(database: Database) -> None:
    async with database.session() as session:
        logo_id = await documents.save(
            session, png(), kind="logo", filename="logo.png", content_type="image/png"
        )
        not_an_image = await documents.save(
            session, b"<svg/>", kind="logo", filename="logo.svg", content_type="image/svg+xml"
        )
    activities = DocumentActivities(database)
    state = job()
    async with branding(database, BRAND.model_copy(update={"logo_document_id": logo_id})):
        with_logo = await activities.render_document(RenderDocument(state=state, kind="quote"))
    async with branding(database, BRAND.model_copy(update={"logo_document_id": not_an_image})):
        without = await activities.render_document(RenderDocument(state=state, kind="invoice"))
    assert len(PdfReader(io.BytesIO((await load(database, with_logo)).content)).pages[0].images)
    # An unusable logo leaves the logo out; the customer's document still renders.
    assert not PdfReader(io.BytesIO((await load(database, without)).content)).pages[0].images


def test_branding_colours_must_be_hex() -> None:
    assert BrandingSettings(primary_color="#ABC").primary_color == "#aabbcc"
    assert BrandingSettings(primary_color=" #0B6E4F ").primary_color == "#0b6e4f"
    for bad in ("red", "#12345", "#0b6e4f; } body { background: url(http://127.0.0.1/x) }"):
        with pytest.raises(ValidationError):
            BrandingSettings(primary_color=bad)
    with pytest.raises(ValidationError):
        BrandingSettings(logo_document_id="../../etc/passwd")


# --- user text fetches nothing and prints as text ---------------------------------------------


@dataclass
class Listener:
    port: int
    requests: list[str]


@pytest.fixture
def listener() -> Iterator[Listener]:
    """An HTTP server on 127.0.0.1 that records every request it gets."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            seen.append(self.path)
            body = b"body { background: red }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Listener(port=server.server_address[1], requests=seen)
    finally:
        server.shutdown()
        server.server_close()


def hostile(port: int) -> list[str]:
    loopback = f"http://127.0.0.1:{port}"
    return [
        '<img src="file:///etc/passwd">',
        f'<link rel=stylesheet href="{loopback}/x.css">',
        f'<img src="{loopback}/pixel.png">',
        f"<style>@import url({loopback}/import.css);</style>",
        f'<div style="background: url({loopback}/bg.png)">styled</div>',
        '<link rel="attachment" href="file:///etc/passwd">',
        f'<object data="{loopback}/object.svg"></object><embed src="{loopback}/embed.svg">',
        f'<svg><image href="{loopback}/svg.png"/></svg>',
    ]


def test_the_machine_has_something_to_leak() -> None:
    with open("/etc/passwd") as passwd:
        assert "root:x:" in passwd.read()  # else the checks below would prove nothing


@pytest.mark.parametrize("kind", ["quote", "work_receipt", "invoice"])
async def test_user_text_fetches_nothing_and_prints_as_text(
    database: Database, listener: Listener, kind: str
) -> None:
    payloads = hostile(listener.port)
    state = job(" " + " ".join(payloads), line_text=f" {payloads[0]} {payloads[1]}")
    async with database.session() as session:
        comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    html = document_html(RenderDocument(state=state, kind=kind), BRAND, comms).html
    assert "<img src=" not in html and "&lt;img src=" in html  # escaped on the way in
    result = await default_renderer().render_result(html)
    assert result.refused == []  # no element asked for anything: there was no element

    # And through the activity, as the workflow will call it.
    document_id = await DocumentActivities(database).render_document(
        RenderDocument(state=state, kind=kind)
    )
    pdf = (await load(database, document_id)).content
    await asyncio.sleep(0.2)  # anything in flight would have arrived by now
    assert listener.requests == []
    assert b"root:x:" not in pdf and "root:x:" not in pdf_text(pdf)
    assert not PdfReader(io.BytesIO(pdf)).attachments
    text = flat(pdf_text(pdf))
    assert '<img src="file:///etc/passwd">' in text
    assert f'<link rel=stylesheet href="http://127.0.0.1:{listener.port}/x.css">' in text
    assert f"http://127.0.0.1:{listener.port}/pixel.png" in text


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_the_fetcher_refuses_every_url_but_the_logo(listener: Listener, mode: str) -> None:
    """The second wall on its own: raw HTML (no escaping) naming files and loopback URLs gets
    none of them; only the logo handed over in memory is drawn."""
    renderer = PdfRenderer(mode=mode)  # type: ignore[arg-type]
    try:
        html = (
            "<html><head>"
            + f'<link rel=stylesheet href="http://127.0.0.1:{listener.port}/head.css">'
            + "</head><body><p>hello</p>"
            + "".join(hostile(listener.port))
            + '<img src="jobline-logo:logo" style="width: 20mm">'
            + "</body></html>"
        )
        result = await renderer.render_result(html, Logo(png(), "image/png"))
    finally:
        renderer.close()
    await asyncio.sleep(0.2)
    assert listener.requests == []
    assert "file:///etc/passwd" in result.refused
    assert f"http://127.0.0.1:{listener.port}/x.css" in result.refused
    assert f"http://127.0.0.1:{listener.port}/pixel.png" in result.refused
    assert "jobline-logo:logo" not in result.refused
    reader = PdfReader(io.BytesIO(result.pdf))
    assert len(reader.pages[0].images) == 1  # the logo, and nothing else
    assert not reader.attachments
    assert b"root:x:" not in result.pdf and "hello" in pdf_text(result.pdf)


# --- the stylesheet parsed once, the fonts kept ---------------------------------------------


@pytest.mark.parametrize("kind", ["quote", "work_receipt", "invoice"])
@pytest.mark.parametrize("with_logo", [False, True])
def test_a_document_is_the_pdf_weasyprint_makes_alone(kind: str, with_logo: bool) -> None:
    """A process parses each document's stylesheet once and keeps its fonts from one render to
    the next (a third of a render's time): the PDF is byte for byte the one WeasyPrint makes
    of the same HTML on its own, the second render too."""
    logo = Logo(png(), "image/png") if with_logo else None
    html = document_html(
        RenderDocument(state=job(), kind=kind), BRAND, CommunicationSettings(), has_logo=with_logo
    ).html
    alone = HTML(string=html, base_url=None, url_fetcher=MemoryOnlyFetcher(logo)).write_pdf()
    parsed_before = _parsed.cache_info()
    first, second = render_pdf_sync(html, logo), render_pdf_sync(html, logo)
    assert first.pdf == alone and second.pdf == alone
    assert first.refused == second.refused == []
    assert _parsed.cache_info().hits > parsed_before.hits  # the second parsed no stylesheet
    assert len(PdfReader(io.BytesIO(first.pdf)).pages[0].images) == (1 if with_logo else 0)


@pytest.mark.parametrize(
    "head",
    [
        "<style>p { color: #123456 } div { color: red }</style><style>p { color: blue }</style>",
        "<style>p { color: blue }</style><link rel=stylesheet href=jobline-logo:logo>",
        "<style>@import url(jobline-logo:logo); p { color: blue }</style>",
        "<style>p { background: url(file:///etc/passwd) }</style>",
        "<style>p { color: blue !important }</style>",
        "<STYLE>p { color: blue }</STYLE>",
    ],
)
def test_any_other_stylesheet_takes_weasyprints_own_path(head: str) -> None:
    """Two stylesheets, a link, anything a parse would fetch or that would rank differently as
    a user stylesheet: rendered as WeasyPrint renders it, every refusal still reported."""
    html = f'<html><head>{head}</head><body><p style="color: green">hello</p></body></html>'
    parsed_before = _parsed.cache_info()
    result = render_pdf_sync(html)
    assert _parsed.cache_info().misses == parsed_before.misses
    fetcher = MemoryOnlyFetcher()
    assert result.pdf == HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    assert result.refused == fetcher.refused
    assert "hello" in pdf_text(result.pdf)


# --- off the event loop ------------------------------------------------------------------------


async def test_rendering_processes_yield_the_cpu_to_the_worker() -> None:
    """PDFs follow their events: the rendering processes run at a lower priority than the
    worker, so a burst of renders does not slow the events' answers on a small machine."""
    renderer = PdfRenderer(workers=2)
    try:
        pids = set(await renderer.warm())
        assert pids and os.getpid() not in pids
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        for pid in pids:
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + RENDER_NICENESS)
    finally:
        renderer.close()


async def test_a_pool_is_retired_after_its_renders_and_a_fresh_one_takes_over() -> None:
    """Rendering processes grow with every render and never give the memory back: after
    `renders_per_pool` renders their pool is retired, its processes exit, and the next render
    runs in a fresh one."""
    renderer = PdfRenderer(workers=1, renders_per_pool=3)
    try:
        first = set(await renderer.warm())  # a warm-up is not a render
        for n in range(3):
            assert "Receipt" in pdf_text(await renderer.render(f"<p>Receipt {n}</p>"))
        second = set(await renderer.warm())
        assert second and not second & first
        deadline = time.monotonic() + 30
        while any(
            psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            for pid in first
        ):
            assert time.monotonic() < deadline, "the retired process did not exit"
            await asyncio.sleep(0.1)
        assert "Receipt" in pdf_text(await renderer.render("<p>Receipt 4</p>"))
        assert set(await renderer.warm()) == second  # one render: not retired yet
    finally:
        renderer.close()


async def _exited(pids: set[int], within: float = 30) -> None:
    deadline = time.monotonic() + within
    while any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        for pid in pids
    ):
        assert time.monotonic() < deadline, f"rendering processes {pids} did not exit"
        await asyncio.sleep(0.05)


async def test_an_idle_pool_stops_its_processes_and_the_next_render_starts_them_again() -> None:
    """Idle rendering processes hold tens of MiB each: after `idle_seconds` with nothing to
    render they exit; a render in the meantime keeps them, and the next document after they
    stopped starts fresh ones."""
    renderer = PdfRenderer(workers=1, idle_seconds=2.0)
    try:
        first = set(await renderer.warm())
        await asyncio.sleep(1.2)
        kept = await renderer.render("<p>Kept</p>")  # restarts the clock
        await asyncio.sleep(1.2)  # 2.4 s since the warm-up, 1.2 s since the render
        assert renderer.running()
        assert all(psutil.pid_exists(pid) for pid in first)
        assert "Kept" in pdf_text(kept)
        await _exited(first, within=15)
        assert not renderer.running()
        assert "Again" in pdf_text(await renderer.render("<p>Again</p>"))
        second = set(await renderer.warm())
        assert second and not second & first
    finally:
        renderer.close()


async def test_a_pool_is_not_retired_while_it_renders() -> None:
    """The idle clock runs only while nothing renders: a render longer than `idle_seconds`
    finishes in the same processes."""
    renderer = PdfRenderer(workers=1, idle_seconds=0.2)
    try:
        first = set(await renderer.warm())
        pages = "".join(f"<p style='page-break-after: always'>Page {n}</p>" for n in range(150))
        started = time.monotonic()
        long_one = await renderer.render(pages)
        took = time.monotonic() - started
        assert set(await renderer.warm()) == first
        assert took > 0.2, "the long render was not long enough to tell"
        assert "Page 149" in pdf_text(long_one)
    finally:
        renderer.close()


async def test_an_idle_pool_is_kept_when_idle_seconds_is_none() -> None:
    renderer = PdfRenderer(workers=1, idle_seconds=None)
    try:
        first = set(await renderer.warm())
        await asyncio.sleep(0.5)
        assert renderer.running()
        assert set(await renderer.warm()) == first
    finally:
        renderer.close()


# Compares a stall of this process's loop with a render's time: another test's processes on the
# same 2 cores change one and not the other, so it runs alone (`make test`'s serial pass).
@pytest.mark.serial
async def test_rendering_does_not_block_the_event_loop() -> None:
    """A ticker keeps ticking while long documents render; rendered inline, one page alone
    would have stopped it for longer than the longest gap allowed here."""
    renderer = default_renderer()
    await renderer.warm()
    many = [
        QuoteLine(description=f"Line {i}", quantity=Decimal("1"), unit_price=Decimal("1.00"))
        for i in range(60)
    ]
    state = job(quote=Quote(version=1, lines=many, total=Decimal("60.00")))
    html = document_html(
        RenderDocument(state=state, kind="quote"), BRAND, CommunicationSettings()
    ).html
    started = time.perf_counter()
    await asyncio.to_thread(render_pdf_sync, html)  # what one render would hold the loop for
    one = time.perf_counter() - started

    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.perf_counter()
    pdfs = await asyncio.gather(*(default_renderer().render(html) for _ in range(4)))
    elapsed = time.perf_counter() - started
    stop.set()
    await ticking
    pages = len(PdfReader(io.BytesIO(pdfs[0])).pages)
    assert pages >= 2
    longest = max(gaps)
    assert longest < one / 3, f"the loop stalled {longest:.3f} s; one render takes {one:.3f} s"
    assert len(gaps) > elapsed / 0.05  # it went on ticking the whole time
