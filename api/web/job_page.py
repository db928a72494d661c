"""The job page `/jobs/{slug}` and its event forms (issue 9 item 3; UI.md §2 "Job page").

The page opens with the stage, what happens next and who it waits on; the events this person
may send now (the lifecycle rules, as the API offers them) are its forms. Each form posts to
`/jobs/{slug}/events/{type}`, which reads it into the event model and sends it through the same
service as the JSON API (api/jobs/service.send_event), with an idempotency key made when the form
was shown, so a double submit is applied once. A refusal shows the form again, with the words and
everything typed.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError

from api.admission import Admitted
from api.clients import service as clients
from api.deps import DatabaseDep, SessionDep, SettingsDep, TemporalDep
from api.documents.routes import document_response
from api.errors import EventRefused, Invalid, NotFound, NotPermitted, Unavailable
from api.idempotency import Idempotency
from api.jobs import send, service
from api.jobs.schemas import JobView
from api.jobs.views import job_view, portal_link_view, quote_link_view, state_of
from api.outbox import service as outbox
from api.pricebook import service as pricebook
from api.users.service import actor_of, people
from api.web import event_forms as forms
from api.web import result_form
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from core import documents, settings_store
from core.company import Company
from core.settings_store import CLOSEOUT, COMMUNICATIONS
from models import events as ev
from models import lifecycle, reminders
from models.closeout import CloseoutSettings
from models.communications import CommunicationSettings
from models.lifecycle import JobState, Milestone, Stage
from models.quote_display import basis_mark, printed_options, rate_text
from models.quoting import QuoteSettings
from models.tables import Client, Job, User
from models.timeline import Style, describe

router = page_router()
_KEY = re.compile(r"^[!-~]{1,200}$")
_DOCUMENT_ID = re.compile(r"^[0-9a-f]{32}$")

# The timeline's filters (UI.md: Status, Messages, Money, Files); an entry may be in several.
MESSAGES = frozenset(
    {"communication_logged", "customer_update_sent", "quote_sent", "quote_follow_up",
     "appointment_reminder", "payment_reminder", "contact_updated", "note_added",
     "tech_dispatched", "invoice_sent", "job_completed", "message_failed"}
)  # fmt: skip
MONEY = frozenset(
    {"quote_drafted", "quote_approved", "approval_granted", "invoice_sent", "payment_recorded",
     "payment_reminder"}
)  # fmt: skip
FILES = frozenset({"quote_sent", "job_completed", "invoice_sent"})
NOT_STATUS = frozenset(
    {"communication_logged", "customer_update_sent", "note_added", "quote_follow_up",
     "appointment_reminder", "payment_reminder"}
)  # fmt: skip
FILTERS = {"all": "All", "status": "Status", "messages": "Messages", "money": "Money",
           "files": "Files"}  # fmt: skip

# Outbox statuses in words, with the tag's look (never colour alone).
STATUS_TAGS = {
    "queued": ("queued", "Queued"),
    "sending": ("queued", "Sending"),
    "sent": ("sent", "Sent"),
    "captured": ("ok", "Captured in the outbox"),
    "failed": ("failed", "Failed"),
    "unknown": ("unknown", "In doubt: check"),
    "resent": ("quiet", "Resent"),
}
REMINDER_WORDS = {
    "quote_follow_up": "Quote follow-up to the customer",
    "quote_stale": "Quote flagged stale",
    "appointment_reminder": "Appointment reminder to the customer",
    "parts_overdue": "Parts overdue check",
    "payment_reminder": "Payment reminder to the customer",
    "stuck": "Stuck check (this stage's time limit)",
}
WAITING_WORDS = {
    "office": "the office",
    "owner": "the owner",
    "manager": "a manager",
    "customer": "the customer",
    "supplier": "the supplier",
    "technician": "the technician",
    "nobody": "nobody",
}
MILESTONE_EVENTS = {
    Milestone.prospect: ("lead_qualified",),
    Milestone.approved: ("quote_approved", "approval_granted", "emergency_dispatch"),
    Milestone.completed: ("job_completed",),
    Milestone.invoiced: ("invoice_sent",),
}
DOCUMENT_WORDS = {
    "quote": "Quote",
    "work_receipt": "Work receipt",
    "invoice": "Invoice",
    "result": "Result",
}


def local_path(value: str | None, fallback: str) -> str:
    """Where to go after a form: a path on this site only (never `//elsewhere` or a URL)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return fallback


def new_key() -> str:
    return secrets.token_urlsafe(18)


# --- what the page needs -----------------------------------------------------------------------


@dataclass
class Loaded:
    row: Job
    state: JobState
    view: JobView
    ctx: forms.Context
    names: dict[str, str]
    comms: CommunicationSettings
    tier: str = "standard"


async def _load(
    session: SessionDep,
    settings: SettingsDep,
    viewer: SignedIn,
    slug: str,
    values: dict[str, Any] | None = None,
) -> Loaded:
    """The job, its view and what its forms need; `values`: a form as posted, whose SKUs the
    quote builder prices."""
    user = viewer.user
    row = await service.get_row(session, user, slug)  # another technician's job: not found
    state = state_of(row)
    secret_key, public_url = settings.secret_key, settings.public_url
    view = job_view(
        row,
        await service.timeline(session, slug),
        await outbox.for_job(session, slug),
        actor_of(user),
        await portal_link_view(session, secret_key, public_url, slug, state),
        quote_link=await quote_link_view(session, secret_key, public_url, slug, state),
        state=state,
    )
    everyone = await people(session)
    stored_settings = await settings_store.stored(session, CLOSEOUT, COMMUNICATIONS)
    closeout = settings_store.parsed(stored_settings, CLOSEOUT, CloseoutSettings)
    comms = settings_store.parsed(stored_settings, COMMUNICATIONS, CommunicationSettings)
    ctx = forms.Context(
        state=state,
        zone=viewer.company.zone,
        owners=[u for u in everyone if u.role in forms.OWNER_ROLES],
        technicians=[u for u in everyone if u.role in forms.TECHNICIAN_ROLES],
        receipt_fields=list(closeout.receipt_fields),
        currency_symbol=viewer.company.currency_symbol,
    )
    names = {u.username: forms.person_name(u) for u in everyone}
    client = await session.get(Client, state.client.id)
    tier = client.tier if client is not None else state.client.tier
    if "quote_drafted" in view.allowed_events:
        ctx.pricebook = await pricebook.search_items(
            session, "", limit=200, client_id=state.client.id, tier=tier
        )
        options = state.quote.options if state.quote else []
        typed = [str(v).strip() for k, v in (values or {}).items() if k.endswith("-sku")]
        skus = {sku for sku in [*(x.sku for o in options for x in o.lines), *typed] if sku}
        found = await pricebook.prices_for(session, state.client.id, tier, skus) if skus else {}
        ctx.prices = {**{i.sku: i for i in ctx.pricebook}, **found}
    return Loaded(row, state, view, ctx, names, comms, tier)


def fill_from_pricebook(values: dict[str, Any], ctx: forms.Context) -> None:
    """A builder row that gives a price-book SKU and a quantity takes the item's name and the
    price this client pays (a fixed one for a fixed-price client) where it left them empty. A
    price typed over a fixed one is kept, for the price book to refuse by its line."""
    for group in forms.OPTION_GROUPS:
        for key in [k for k in values if k.startswith(f"{group}-") and k.endswith("-sku")]:
            prefix = key[: -len("sku")]
            item = ctx.prices.get(str(values[key]).strip())
            if item is None:
                continue
            if not str(values.get(prefix + "description", "")).strip():
                values[prefix + "description"] = item.name
            if not str(values.get(prefix + "unit_price", "")).strip():
                values[prefix + "unit_price"] = f"{item.unit_price:.2f}"
            if not str(values.get(prefix + "quantity", "")).strip():
                values[prefix + "quantity"] = "1"


@dataclass
class Search:
    """The price book search on the job page (a GET form: works without JavaScript)."""

    q: str
    items: list[Any]


async def pricebook_search(session: SessionDep, loaded: Loaded, q: str | None) -> Search | None:
    if "quote_drafted" not in loaded.view.allowed_events:
        return None
    text = (q or "").strip()[:100]
    if not text:
        return Search("", [])
    state = loaded.state
    items = await pricebook.search_items(
        session, text, limit=30, client_id=state.client.id, tier=loaded.tier
    )
    return Search(text, items)


def quote_section(state: JobState, company: Company, tax_label: str, tier: str) -> dict[str, Any]:
    """The Quote section's figures: every option with its lines and their marks, the rows under
    them (models/quote_display.py, as the PDF prints them), and the earlier versions."""
    quote = state.quote
    if quote is None:
        return {}
    return {
        "options": [
            {
                "key": o.key,
                "name": o.name,
                "chosen": o.chosen,
                "lines": [
                    {"line": line, "mark": basis_mark(line, tier), "amount": line.amount}
                    for line in o.lines
                ],
                "rows": o.rows,
            }
            for o in printed_options(quote, tax_label, company.money)
        ],
        "tax": f"{tax_label} {rate_text(quote.tax_rate)}",
        "earlier": [
            {
                "version": q.version,
                "drafted": company.when(q.drafted_at),
                "sent": company.when(q.sent_at),
                "totals": ", ".join(
                    (f"{o.name} " if len(q.options) > 1 else "") + company.money(o.totals.total)
                    for o in q.options
                ),
            }
            for q in reversed(state.earlier_quotes)
        ],
    }


def _offered(view: JobView) -> tuple[str | None, list[str], bool]:
    """The main next event, the others (cancel excluded), and whether cancel is allowed."""
    allowed = [t for t in view.allowed_events if t in forms.FORM_EVENTS]
    primary = next((t for t in forms.PRIMARY_ORDER if t in allowed), None)
    if view.stage == Stage.lead and view.owner is None and "owner_assigned" in allowed:
        primary = "owner_assigned"
    if view.approval_pending and "approval_granted" in allowed:
        primary = "approval_granted"  # the request waiting on this manager comes first
    others = [t for t in allowed if t != primary and t != "job_canceled"]
    return primary, others, "job_canceled" in allowed


def _since(company: Company, view: JobView) -> str:
    return company.when(view.stage_entered_at)


def next_sentence(view: JobView, company: Company, names: dict[str, str]) -> str:
    """One sentence: what happens next and who it waits on."""

    def who(username: str | None) -> str:
        return names.get(username or "", username or "nobody")

    since = _since(company, view)
    q = view.quote
    tech = who(view.schedule.technician) if view.schedule else "the technician"
    window = company.window(view.schedule.window_start, view.schedule.window_end) if (
        view.schedule) else ""  # fmt: skip
    match view.stage:
        case Stage.lead:
            if view.owner is None:
                return f"Unassigned lead since {since}: assign an owner, then qualify it."
            return f"Waiting on {who(view.owner)} to qualify the lead since {since}."
        case Stage.prospect:
            return f"Qualified on {since}: waiting on a quote to be drafted."
        case Stage.quoting:
            total = company.money(q.total) if q else ""
            if q and len(q.options) > 1:
                total = ", ".join(f"{o.name} {company.money(o.total)}" for o in q.options)
            return f"Quote v{q.version if q else '?'} ({total}) drafted; waiting to be sent."
        case Stage.quote_sent:
            if view.approval_pending:
                return f"Waiting on a manager to approve the quote since {since}."
            expected = (
                f", who expects to decide by {company.when(q.approval_expected_at)}"
                if q and q.approval_expected_at
                else ""
            )
            to = f" to {q.sent_to}" if q and q.sent_to else ""
            return f"Quote sent{to} on {since}; waiting on the customer{expected}."
        case Stage.saving:
            if view.approval_pending:
                return f"Waiting on a manager to approve the quote since {since}."
            return f"The customer declined the quote on {since}: revise it, or cancel the job."
        case Stage.approved:
            amount = company.money(view.contract_amount)
            return f"Approved on {since} ({amount}): order parts or schedule the visit."
        case Stage.awaiting_parts:
            waiting = [p for p in view.parts if p.delivered_at is None]
            if not waiting:
                return f"The visit found the wrong parts ({since}): order the right ones."
            suppliers = ", ".join(sorted({p.line.supplier for p in waiting}))
            eta = max(p.line.expected_delivery for p in waiting)
            return f"Waiting on parts from {suppliers} since {since}, ETA {company.day(eta)}."
        case Stage.ready_to_schedule:
            return f"Ready to schedule since {since}: choose a technician and a window."
        case Stage.scheduled:
            if view.checklist is None:
                return f"Scheduled with {tech} for {window}; the checklist is still to do."
            return f"Scheduled with {tech} for {window}; ready to dispatch."
        case Stage.dispatched:
            return f"{tech} is on the way since {since} (window {window})."
        case Stage.on_site:
            return f"{tech} has been on site since {since}."
        case Stage.completed:
            return f"Completed on {since}: waiting on the office to send the invoice."
        case Stage.invoiced:
            paid = _paid_words(view, company)
            return f"Invoiced on {since}: waiting on a manager to verify the evidence{paid}."
        case Stage.verified:
            return f"Verified on {since}: waiting on payment{_paid_words(view, company)}."
        case Stage.closed:
            return f"Closed on {since}: paid and verified."
        case Stage.canceled:
            return f"Canceled on {since}: {view.cancel_reason or 'no reason given'}."
    return ""


def _paid_words(view: JobView, company: Company) -> str:
    due = view.invoice.total if view.invoice else view.contract_amount
    if due is None:
        return ""
    return f" ({company.money(view.paid_total)} of {company.money(due)} paid)"


def stuck_reason(view: JobView, comms: CommunicationSettings, company: Company) -> str:
    if not view.stuck:
        return ""
    if view.quote_stale:
        return f"The quote went unanswered after {view.follow_ups_sent} follow-up(s): stale."
    limit = comms.stage_limits_hours.get(view.stage)
    held = f"longer than its limit of {limit} h" if limit else "longer than its limit"
    return f"In {view.stage.value.replace('_', ' ')} {held}, since {_since(company, view)}."


def next_reminder(state: JobState, comms: CommunicationSettings, company: Company) -> str:
    due = reminders.pending(state, comms)
    if not due:
        return ""
    first = due[0]
    return f"{REMINDER_WORDS.get(first.kind, first.kind)}: {company.when(first.at)}"


def milestone_strip(view: JobView, company: Company) -> list[dict[str, Any]]:
    """The five milestones with the date each was reached (the current one marked)."""
    reached_at: dict[Milestone, Any] = {Milestone.lead: view.created_at}
    for entry in view.timeline:
        for milestone, types in MILESTONE_EVENTS.items():
            if entry.type in types and milestone not in reached_at:
                reached_at[milestone] = entry.at
    if view.stage == Stage.closed:
        reached_at[Milestone.closed] = view.stage_entered_at
    strip = []
    order = [Milestone.lead, Milestone.prospect, Milestone.approved, Milestone.completed,
             Milestone.invoiced, Milestone.closed]  # fmt: skip
    for milestone in order:
        at = reached_at.get(milestone)
        strip.append(
            {
                "name": milestone.value,
                "date": company.day(at) if at else "",
                "current": view.milestone == milestone,
                "reached": at is not None,
            }
        )
    if view.stage == Stage.canceled:
        strip.append({"name": "Canceled", "date": _since(company, view), "current": True,
                      "reached": True})  # fmt: skip
    return strip


_EVENT = TypeAdapter(ev.Event)


def _what(entry: Any, company: Company, names: dict[str, str]) -> str:
    """A timeline line for people: the event's own words (models/timeline.py), with times in the
    company's zone, money with its symbol and people by name. Reminders and other records are
    not events: their stored line stands."""
    try:
        event = _EVENT.validate_python(entry.payload or {})
    except ValidationError:
        return entry.summary or entry.type.replace("_", " ").capitalize()
    style = Style(money=company.money, window=company.window, person=lambda u: names.get(u, u))
    return describe(event, style)


def _in_filter(entry_type: str, show: str) -> bool:
    if show == "messages":
        return entry_type in MESSAGES
    if show == "money":
        return entry_type in MONEY
    if show == "files":
        return entry_type in FILES
    if show == "status":
        return entry_type not in NOT_STATUS
    return True


def timeline_rows(
    view: JobView, company: Company, names: dict[str, str], show: str
) -> list[dict[str, str]]:
    rows = []
    for entry in reversed(view.timeline):
        if not _in_filter(entry.type, show):
            continue
        who = names.get(entry.actor, entry.actor)
        rows.append(
            {
                "when": company.when(entry.at),
                "who": who if entry.actor_role != "system" else "Jobline",
                "role": entry.actor_role,
                "what": _what(entry, company, names),
                "type": entry.type.replace("_", " "),
            }
        )
    return rows


async def _client(session: SessionDep, user: User, client_id: int) -> Client | None:
    try:
        return await clients.read(session, user, client_id)
    except NotFound:
        return None


def _form_for(loaded: Loaded, event_type: str, **kw: Any) -> forms.EventForm:
    return forms.build(event_type, loaded.ctx, **kw)


# --- the page ---------------------------------------------------------------------------------


@router.get("/jobs/{slug}", response_class=HTMLResponse)
async def job_page(
    request: Request,
    slug: str,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    show: str = "all",
    pb: str | None = None,
) -> Response:
    loaded = await _load(session, settings, viewer, slug)
    view, company = loaded.view, viewer.company
    quotes = await settings_store.load(session, settings_store.QUOTES, QuoteSettings)
    primary, others, cancel = _offered(view)
    here = f"/jobs/{slug}"
    show = show if show in FILTERS else "all"
    client = await _client(session, viewer.user, view.client.id)
    notes = [e for e in reversed(view.timeline) if e.type == "note_added"]
    return render(
        request,
        "job.html",
        viewer,
        job=view,
        state=loaded.state,
        names=loaded.names,
        client=client,
        here=here,
        primary=_form_for(loaded, primary) if primary else None,
        others=[_form_for(loaded, t) for t in others],
        cancel=_form_for(loaded, "job_canceled") if cancel else None,
        new_key=new_key,
        sentence=next_sentence(view, company, loaded.names),
        stuck=stuck_reason(view, loaded.comms, company),
        reminder=next_reminder(loaded.state, loaded.comms, company),
        strip=milestone_strip(view, company),
        timeline=timeline_rows(view, company, loaded.names, show),
        show=show,
        filters=FILTERS,
        status_tags=STATUS_TAGS,
        documents=await documents.for_job(session, slug),
        document_words=DOCUMENT_WORDS,
        notes=notes,
        waiting=WAITING_WORDS.get(view.waiting_on, view.waiting_on),
        tel=re.sub(r"[^0-9+]", "", view.client.phone or ""),
        can_send=not viewer.is_technician and view.stage not in lifecycle.FINAL_STAGES
        and "customer_update_sent" in view.allowed_events,
        actions=forms.ACTIONS,
        result=await result_form.section(session, viewer, slug),
        quote=quote_section(loaded.state, company, quotes.tax_label, loaded.tier),
        search=await pricebook_search(session, loaded, pb),
    )  # fmt: skip


def _form_page(
    request: Request,
    viewer: SignedIn,
    loaded: Loaded,
    form: forms.EventForm,
    back: str,
    *,
    status: int = 200,
    refusal: str = "",
    search: Search | None = None,
) -> HTMLResponse:
    view = loaded.view
    allowed = [t for t in view.allowed_events if t in forms.FORM_EVENTS]
    return render(
        request,
        "job_event.html",
        viewer,
        status=status,
        job=view,
        form=form,
        back=back,
        here=f"/jobs/{view.slug}",
        key=new_key(),
        refusal=refusal,
        allowed=allowed,
        offered=form.type in allowed,
        actions=forms.ACTIONS,
        names=loaded.names,
        sentence=next_sentence(view, viewer.company, loaded.names),
        search=search if form.type == "quote_drafted" else None,
    )


@router.get("/jobs/{slug}/events/{event_type}", response_class=HTMLResponse)
async def event_form_page(
    request: Request,
    slug: str,
    event_type: str,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    back: str | None = None,
    rows: int = 0,
    pb: str | None = None,
) -> Response:
    if event_type not in forms.FORM_EVENTS:
        raise NotFound(f"no event form {event_type!r}")
    loaded = await _load(session, settings, viewer, slug)
    form = _form_for(loaded, event_type, extra_rows=max(0, min(rows, 50)))
    offered = event_type in loaded.view.allowed_events
    return _form_page(
        request, viewer, loaded, form, local_path(back, f"/jobs/{slug}"),
        status=200 if offered else 409, search=await pricebook_search(session, loaded, pb),
    )  # fmt: skip


def _digest(path: str, event: Any) -> str:
    body = json.dumps(["POST", path, event.model_dump(mode="json")], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _allowed_words(allowed: list[str]) -> str:
    words = [forms.ACTIONS[t][0] for t in allowed if t in forms.ACTIONS]
    return ", ".join(words) if words else "nothing"


@router.post("/jobs/{slug}/events/{event_type}", response_class=HTMLResponse)
async def send_event_form(
    request: Request,
    slug: str,
    event_type: str,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    admitted: Admitted,
) -> Response:
    form_data = await viewer.form(request, back=f"/jobs/{slug}")
    if event_type not in forms.FORM_EVENTS:
        raise NotFound(f"no event form {event_type!r}")
    back = local_path(str(form_data.get("back") or ""), f"/jobs/{slug}")
    values = forms.kept(form_data)
    for hidden in ("csrf_token", "back", "idempotency_key", "more_rows", "extra_rows"):
        values.pop(hidden, None)
    extra = str(form_data.get("extra_rows") or "0")
    extra_rows = int(extra) if extra.isdigit() else 0
    loaded = await _load(session, settings, viewer, slug, values)
    if event_type == "quote_drafted":
        fill_from_pricebook(values, loaded.ctx)
    if "more_rows" in form_data:  # "Add more rows" without JavaScript: nothing is sent
        more = forms.build(event_type, loaded.ctx, values, extra_rows=min(extra_rows + 3, 50))
        return _form_page(request, viewer, loaded, more, back)

    def again(status: int, general: list[str], errors: dict[str, str] | None = None) -> Response:
        shown = forms.build(event_type, loaded.ctx, values, errors or {}, general, extra_rows)
        return _form_page(request, viewer, loaded, shown, back, status=status,
                          refusal=general[0] if general else "")  # fmt: skip

    try:
        event = forms.read(event_type, values, loaded.ctx)
    except forms.FormProblems as problems:
        return again(422, problems.general, problems.errors)

    key = str(form_data.get("idempotency_key") or "")
    idem = Idempotency(
        key=key if _KEY.match(key) else None,
        username=viewer.user.username,
        digest=_digest(request.url.path, event),
    )
    try:
        if event_type == "quote_sent" and getattr(event, "sms", False):
            await send.check_sms_enabled(session)
        await service.send_event(
            session, db, temporal, viewer.user, slug, event, idem, settings.api_event_timeout_s
        )
    except EventRefused as refused:
        allowed = refused.extra.get("allowed_events") or []
        words = _refusal_words(refused.message, allowed)
        why = (refused.status_code, words, refused.message)
        return await _refused(request, viewer, session, settings, slug, event_type, values,
                              extra_rows, back, why)  # fmt: skip
    except (NotPermitted, Invalid, Unavailable) as error:
        why = (error.status_code, error.message, error.message)
        return await _refused(request, viewer, session, settings, slug, event_type, values,
                              extra_rows, back, why)  # fmt: skip
    except RequestValidationError as invalid:
        words = "; ".join(str(e.get("msg", "")) for e in invalid.errors()) or "not valid"
        return again(422, [words])
    if viewer.is_technician and event_type == "job_incomplete" and back == f"/jobs/{slug}":
        back = "/my"  # handed back to the office: the job is no longer this technician's to see
    return see_other(back, flash=f"Done: {forms.ACTIONS[event_type][0]}.")


def _refusal_words(message: str, allowed: list[str]) -> str:
    return f"Not done: {message}. What this job takes from you now: {_allowed_words(allowed)}."


async def _refused(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    settings: SettingsDep,
    slug: str,
    event_type: str,
    values: dict[str, Any],
    extra_rows: int,
    back: str,
    why: tuple[int, str, str],
) -> Response:
    """The form again after the rules (or the service) refused it: the job as it is now, the
    refusal in words at the top (and at its field when it names one), everything typed kept.
    `why`: the status, the words for people, and the rule's own message."""
    status, words, raw = why
    loaded = await _load(session, settings, viewer, slug, values)
    shown = forms.build(event_type, loaded.ctx, values, {}, [words], extra_rows)
    field = forms.refusal_field(event_type, values, raw)
    if field:  # a builder line the price book refused: its words at the line
        shown.errors[field] = raw.split(":", 1)[1].strip()
    else:
        field = forms.place_refusal(shown.items, raw)
        if field:
            shown.errors[field] = raw
    return _form_page(request, viewer, loaded, shown, back, status=status, refusal=words)


@router.get("/jobs/{slug}/documents/{document_id}")
async def job_document(
    slug: str, document_id: str, viewer: Viewer, session: SessionDep
) -> Response:
    """A job's PDF for a signed-in person who may see the job (the API's route takes a bearer
    token only): the same store and the same rule, a document of another job is not found."""
    await service.get_row(session, viewer.user, slug)
    missing = NotFound(f"no document {document_id!r} on job {slug!r}")
    if not _DOCUMENT_ID.match(document_id):
        raise missing
    row = await documents.load(session, document_id)
    if row is None or row.job_slug != slug:
        raise missing
    return document_response(row)
