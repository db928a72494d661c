"""The board, `/jobs` (issue 9 item 2): the office's home after sign-in.

Filters are a GET form (the URL can be shared); a "Needs attention" strip; five milestone
columns, each headed with its count and money total; the same jobs as a paginated list
(`?view=list`). `/jobs/board.fragment` answers the board alone, for static/board.js to keep the
page current without a reload (the page is complete without it: a refresh link).

Everything is read through api/jobs/service.py (the job list's filters, with the API's
visibility: a technician sees only the jobs assigned to them now), by aggregates and LIMITed
queries: columns show their first cards and say how many more there are.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from api.deps import SessionDep
from api.jobs import service
from api.jobs.service import ATTENTION, FlaggedJob, JobFilters, StageTally
from api.web.pages import PAGE_HEADERS, SignedIn, Viewer, page_router, render, templates
from core import settings_store
from models import reminders
from models.communications import CommunicationSettings
from models.lifecycle import MILESTONE_OF, JobState, Milestone, Role, Stage

router = page_router()

COLUMNS = (
    Milestone.lead,
    Milestone.prospect,
    Milestone.approved,
    Milestone.completed,
    Milestone.invoiced,
)
CARDS_PER_COLUMN = 15
LIST_PAGE_SIZE = 50
WAITING_ON = ("office", "owner", "customer", "manager", "supplier", "technician", "nobody")
FILTER_NAMES = (
    "stage",
    "milestone",
    "owner",
    "technician",
    "client",
    "stuck",
    "waiting_on",
    "attention",
    "q",
)

# The filters under "More filters" (Search and Stage are always shown).
MORE_FILTERS = ("milestone", "owner", "technician", "client", "waiting_on", "stuck", "attention")

# The attention strip's words: a tag (its class, one of jobline.css's few tag colours), and
# what it means.
ATTENTION_WORDS = {
    "stuck": ("Stuck", "stuck", "held in a stage past its limit"),
    "stale_quote": ("Stale quote", "stale", "quote unanswered after every follow-up"),
    "parts_overdue": ("Parts overdue", "overdue", "parts past their expected delivery"),
    "unassigned": ("Unassigned", "info", "leads without an owner (cannot be qualified)"),
    "unpaid": ("Unpaid", "quiet", "invoiced, payment not recorded"),
    "unresulted": ("Unresulted", "overdue", "no Sale / No Sale result, though one is due"),
}
REMINDER_WORDS = {
    "quote_follow_up": "Quote follow-up to the customer",
    "quote_stale": "Quote flagged stale if unanswered",
    "appointment_reminder": "Appointment reminder to the customer",
    "parts_overdue": "Parts delivery check",
    "payment_reminder": "Payment reminder to the customer",
    "stuck": "Stuck check",
}


def stage_label(stage: str) -> str:
    return stage.replace("_", " ").capitalize()


def duration(since: datetime, now: datetime) -> str:
    """How long, for people: `45 min`, `5 h`, `3 d`."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@dataclass
class BoardQuery:
    """The board's URL: the filters, the view and the list's page."""

    filters: JobFilters
    values: dict[str, str]  # what the form shows back (as typed, valid ones only)
    view: str = "board"
    page: int = 1
    problems: list[str] = field(default_factory=list)

    def url(self, path: str = "/jobs", **changes: str | int | None) -> str:
        params: dict[str, Any] = {k: v for k, v in self.values.items() if v}
        if self.view == "list":
            params["view"] = "list"
        for name, value in changes.items():
            if value in (None, ""):
                params.pop(name, None)
            else:
                params[name] = value
        if params.get("view") == "board":
            params.pop("view")
        if str(params.get("page")) == "1":
            params.pop("page")
        return f"{path}?{urlencode(params)}" if params else path

    @property
    def filtered(self) -> bool:
        return any(self.values.values())


def _client_id(text: str) -> int | None:
    text = text.strip().upper().removeprefix("C-")
    return int(text) if text.isdigit() and 0 < int(text) < 2**31 else None


def read_query(request: Request, viewer: SignedIn) -> BoardQuery:
    params = request.query_params
    # A NUL can be stored nowhere (PostgreSQL refuses it in text): it cannot match, drop it.
    values = {
        name: (params.get(name) or "").replace("\x00", "").strip()[:200] for name in FILTER_NAMES
    }
    problems: list[str] = []

    def one_of(name: str, allowed: set[str], what: str) -> str | None:
        value = values[name]
        if value and value not in allowed:
            problems.append(f"{what}: there is no {value!r}; that filter was left out")
            values[name] = ""
            return None
        return value or None

    stage = one_of("stage", {s.value for s in Stage}, "Stage")
    milestone = one_of("milestone", {m.value for m in Milestone}, "Milestone")
    waiting_on = one_of("waiting_on", set(WAITING_ON), "Waiting on")
    attention = one_of("attention", set(ATTENTION), "Needs attention")
    stuck = one_of("stuck", {"yes", "no"}, "Stuck")
    client_id = None
    if values["client"]:
        client_id = _client_id(values["client"])
        if client_id is None:
            problems.append("Client: enter a client number like C-00012 or 12")
            values["client"] = ""
    technician = values["technician"] or None
    if viewer.is_technician:  # their own jobs only (the query keeps that anyway)
        values["owner"] = values["technician"] = ""
        technician = None
    # Closed and canceled jobs only when asked for (by stage or milestone).
    final = {Milestone.closed.value, Milestone.canceled.value}
    open_only = not stage and milestone not in final
    filters = JobFilters(
        stage=stage,
        milestone=milestone,
        client_id=client_id,
        q=values["q"] or None,
        stuck={"yes": True, "no": False}.get(stuck or ""),
        owner=values["owner"] or None,
        technician=technician,
        waiting_on=waiting_on,
        attention=attention,
        open_only=open_only,
    )
    view = "list" if params.get("view") == "list" else "board"
    page_text = params.get("page") or "1"
    page = int(page_text) if page_text.isdigit() and 0 < int(page_text) <= 100_000 else 1
    return BoardQuery(filters, values, view, page, problems)


@dataclass
class Badge:
    word: str
    css: str
    reason: str


@dataclass
class Card:
    slug: str
    seq: int  # the job's event count: any change to the job changes the board's stamp
    label: str  # "#1042", or the slug before the job has a number
    title: str
    client: str
    stage: str
    milestone: str
    waiting_on: str
    in_stage: str
    person: str  # "Owner: Sam Sales" / "Technician: Tess Turner" / ""
    amount: str
    badges: list[Badge]
    next_reminder: str  # "Payment reminder to the customer, Tue 3 Jun 2026, 09:00 EDT"


class CardMaker:
    """Turns flagged rows into cards: the words, the company's zone and currency."""

    def __init__(
        self, viewer: SignedIn, comms: CommunicationSettings, names: dict[str, str]
    ) -> None:
        self.company = viewer.company
        self.comms = comms
        self.names = names
        self.now = datetime.now(UTC)

    def name(self, username: str | None) -> str:
        return self.names.get(username or "", username or "")

    def card(self, job: FlaggedJob) -> Card:
        row = job.row
        state = JobState.model_validate(row.state)
        person = ""
        if row.assigned_tech:
            person = f"Technician: {self.name(row.assigned_tech)}"
        elif row.owner:
            person = f"Owner: {self.name(row.owner)}"
        return Card(
            slug=row.slug,
            seq=row.seq,
            label=f"#{row.number}" if row.number is not None else row.slug,
            title=row.title,
            client=row.client_name,
            stage=stage_label(row.stage),
            milestone=row.milestone,
            waiting_on=row.waiting_on,
            in_stage=duration(row.stage_entered_at, self.now),
            person=person,
            amount=self.company.money(job.amount) if job.amount is not None else "",
            badges=[self.badge(kind, state, job) for kind in job.attention],
            next_reminder=self.reminder(row.next_reminder_at, state),
        )

    def reminder(self, at: datetime | None, state: JobState) -> str:
        if at is None:
            return ""
        pending = reminders.pending(state, self.comms)
        kind = next((d.kind for d in pending if d.at == at), pending[0].kind if pending else None)
        what = REMINDER_WORDS.get(kind or "", "Reminder")
        return f"{what}, {self.company.when(at)}"

    def badge(self, kind: str, state: JobState, job: FlaggedJob) -> Badge:
        word, css, _ = ATTENTION_WORDS[kind]
        return Badge(word, css, self.reason(kind, state, job))

    def reason(self, kind: str, state: JobState, job: FlaggedJob) -> str:
        row = job.row
        r = state.reminders
        match kind:
            case "stuck":
                limit = self.comms.stage_limits_hours.get(Stage(row.stage))
                held = f"more than {limit} h" if limit else duration(row.stage_entered_at, self.now)
                since = self.company.when(row.stage_entered_at)
                return f"{stage_label(row.stage)} for {held}, since {since}"
            case "stale_quote":
                sent = state.quote.sent_at if state.quote else None
                return f"no answer after {r.follow_ups_sent} follow-up(s)" + (
                    f"; quote sent {self.company.day(sent)}" if sent else ""
                )
            case "parts_overdue":
                late = [
                    p.line.sku
                    for p in state.outstanding_parts
                    if p.line.sku in r.parts_overdue_skus
                ]
                return f"{', '.join(late or r.parts_overdue_skus)} past expected delivery"
            case "unassigned":
                return f"no owner for {duration(row.created_at, self.now)}"
            case "unresulted":
                due = self.company.day(row.resulting_due_at)
                return f"no result, due since {due}" if due else "no result, though one is due"
            case _:
                invoice = state.invoice
                paid = self.company.money(state.paid_total)
                if invoice is None:
                    return f"{paid} paid"
                return (
                    f"invoice {self.company.money(invoice.total)} sent "
                    f"{self.company.day(invoice.sent_at)}, {paid} paid"
                )


@dataclass
class Column:
    milestone: str
    count: int
    amount: str
    cards: list[Card]
    more: int
    more_url: str


@dataclass
class AttentionItem:
    kind: str
    word: str
    css: str
    reason: str
    count: int
    url: str
    current: bool


def _column_milestones(q: BoardQuery) -> tuple[str, ...]:
    f = q.filters
    if f.stage:
        return (MILESTONE_OF[Stage(f.stage)].value,)
    if f.milestone:
        return (f.milestone,)
    return tuple(m.value for m in COLUMNS)


def _matching(tally: dict[str, StageTally], f: JobFilters) -> dict[str, StageTally]:
    """The tally of the stages the stage filter lets through."""
    return {s: t for s, t in tally.items() if not f.stage or s == f.stage}


async def board_context(request: Request, session: SessionDep, viewer: SignedIn) -> dict[str, Any]:
    q = read_query(request, viewer)
    f = q.filters
    user = viewer.user
    company = viewer.company
    comms = await settings_store.load(session, settings_store.COMMUNICATIONS, CommunicationSettings)
    people = await service.board_people(session)
    names = {p.username: p.display_name or p.username for p in people}
    maker = CardMaker(viewer, comms, names)

    tally = await service.board_tally(session, user, f)
    matching = _matching(tally, f)
    total = sum(t.count for t in matching.values())

    # The strip counts every reason among the jobs the other filters leave, so that one
    # reason picked does not hide how many jobs the others have.
    strip = matching
    if f.attention:
        strip = _matching(await service.board_tally(session, user, replace(f, attention=None)), f)
    attention = []
    for kind in ATTENTION:
        word, css, reason = ATTENTION_WORDS[kind]
        count = sum(t.attention.get(kind, 0) for t in strip.values())
        current = f.attention == kind
        url = q.url(attention=None if current else kind, view="list", page=None)
        attention.append(AttentionItem(kind, word, css, reason, count, url, current))

    columns: list[Column] = []
    rows: list[Card] = []
    pages = 1
    if q.view == "list":
        pages = max(1, -(-total // LIST_PAGE_SIZE))
        page = min(q.page, pages)
        q.page = page
        found = await service.board_list(
            session, user, f, page=page, page_size=LIST_PAGE_SIZE, total=total
        )
        rows = [maker.card(job) for job in found]
    else:
        for milestone in _column_milestones(q):
            stages = {s: t for s, t in matching.items() if MILESTONE_OF[Stage(s)] == milestone}
            count = sum(t.count for t in stages.values())
            amount = sum((t.amount for t in stages.values()), Decimal("0"))
            cards: list[Card] = []
            if count:
                found = await service.board_column(
                    session, user, f, milestone, limit=CARDS_PER_COLUMN, total=count
                )
                cards = [maker.card(job) for job in found]
            columns.append(
                Column(
                    milestone=milestone,
                    count=count,
                    amount=company.money(amount),
                    cards=cards,
                    more=max(0, count - len(cards)),
                    more_url=q.url(milestone=milestone, view="list", page=None),
                )
            )

    # Closed and canceled are counted only when asked for: no count rather than a wrong 0.
    stage_counts = {s: t.count for s, t in tally.items()}
    now = datetime.now(UTC)
    stamp_source = repr(
        (
            sorted((s, t.count, t.amount) for s, t in tally.items()),
            [[(c.slug, c.seq, c.next_reminder) for c in col.cards] for col in columns],
            [(c.slug, c.seq, c.next_reminder) for c in rows],
        )
    )
    staff = [p for p in people if p.role in (Role.sales, Role.office, Role.manager)]
    technicians = [p for p in people if p.role == Role.technician]
    return {
        "q": q,
        "total": total,
        "more_in_use": sum(1 for name in MORE_FILTERS if q.values.get(name)),
        "attention": attention,
        "columns": columns,
        "rows": rows,
        "pages": pages,
        "stage_counts": stage_counts,
        "stages": [s.value for s in Stage],
        "milestones": [m.value for m in Milestone],
        "stage_label": stage_label,
        "waiting_on_choices": WAITING_ON,
        "staff": staff,
        "technicians": technicians,
        "updated_clock": _clock(now, company),
        "stamp": hashlib.sha256(stamp_source.encode()).hexdigest()[:16],
        "fragment_url": q.url("/jobs/board.fragment", page=q.page if q.view == "list" else None),
        "self_url": q.url(page=q.page if q.view == "list" else None),
        "list_url": q.url(view="list", page=None),
        "board_url": q.url(view="board", page=None),
    }


def _clock(now: datetime, company: Any) -> str:
    """`10:42 EDT`: the "updated" line's time of day in the company's zone."""
    text = company.when(now)  # "Tue 3 Jun 2026, 10:42 EDT"
    return text.rsplit(", ", 1)[-1]


@router.get("/jobs")
async def board(request: Request, session: SessionDep, viewer: Viewer) -> Response:
    context = await board_context(request, session, viewer)
    return render(request, "jobs.html", viewer, **context)


@router.get("/jobs/board.fragment")
async def board_fragment(request: Request, session: SessionDep, viewer: Viewer) -> Response:
    """The board alone (what static/board.js swaps in), for the same filters."""
    context = await board_context(request, session, viewer)
    page = templates.TemplateResponse(
        request,
        "board_content.html",
        {"viewer": viewer, "company": viewer.company, **context},
        headers=PAGE_HEADERS,
    )
    return HTMLResponse(page.body, headers={**PAGE_HEADERS, "X-Board-Stamp": context["stamp"]})
