"""Jobs: start each job's workflow, pass events to it, and read the projection back.

The workflow decides; this module only finds the job, checks that named people exist, and turns
the workflow's refusals into API errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NoReturn

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, case, func, not_, or_, true
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar
from temporalio.client import Client as TemporalClient
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import visibility
from api.clients import service as clients
from api.errors import EventRefused, Invalid, NotFound, Unavailable
from api.idempotency import HEADER, Idempotency
from api.quotes import pricing
from api.text import NUL_MESSAGE, find_nul
from api.users.service import actor_of, find_user
from core import settings_store
from core.db import Database, DatabaseBusy
from core.projection_store import timeline_row, write_projection
from core.temporal import workflow_id
from models import events as ev
from models import lifecycle
from models.closeout import CloseoutSettings, JobCloseout
from models.lifecycle import Refusal, Role
from models.messages import EventOutcome, EventRequest, JobInput, ProjectionInput
from models.tables import Job, JobEvent, OutboxMessage, User
from workflows.job import JobWorkflow

log = logging.getLogger("jobline.api")
_SLUG_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: slugs get read out on phones


def new_slug() -> str:
    return "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(8))


async def get_row(
    session: AsyncSession, user: User | None, slug: str, *, answering_their_event: bool = False
) -> Job:
    """The job, if this user may see it (no user: the job's customer, whose quote link named
    it). `answering_their_event`: the answer to an event this user was just let send, which may
    have taken the job from them (a technician's `job_incomplete` unassigns them): that answer
    is still theirs."""
    query = select(Job).where(Job.slug == slug)
    if user is not None and not answering_their_event:
        query = visibility.jobs(query, user)
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound(f"no job {slug!r}")
    return row


async def timeline(session: AsyncSession, slug: str) -> list[JobEvent]:
    rows = await session.exec(
        select(JobEvent).where(JobEvent.job_slug == slug).order_by(col(JobEvent.seq))
    )
    return list(rows.all())


async def _check_people(session: AsyncSession, event: ev._Event) -> None:
    """Events that name a person must name one who exists and can do that job."""
    named: list[tuple[str, str, set[str]]] = []
    if isinstance(event, ev.OwnerAssigned):
        named.append(("owner", event.owner, {"sales", "office", "manager"}))
    if isinstance(event, ev.JobScheduled):
        named.append(("technician", event.technician, {"technician"}))
    for field, username, roles in named:
        user = await find_user(session, username)
        if user is None:
            raise Invalid(f"{field}: no user {username!r}")
        if user.role not in roles:
            raise Invalid(
                f"{field}: {username} is {user.role}; needs one of {', '.join(sorted(roles))}"
            )


def _check_text(event: ev._Event) -> None:
    """Every text of an event must be storable: the projection could never be written otherwise."""
    where = find_nul(event.model_dump(mode="json", exclude={"type"}))
    if where is not None:
        raise Invalid(f"{where}: {NUL_MESSAGE}")


def _refusal_from(error: WorkflowUpdateFailedError) -> Refusal | None:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in {
        "role_not_allowed",
        "event_not_allowed",
        "invalid_event",
    }:
        return Refusal.model_validate(cause.details[0])
    return None


async def create_job(
    session: AsyncSession,
    db: Database,
    temporal: TemporalClient,
    task_queue: str,
    user: User,
    body: ev.JobCreated,
    idem: Idempotency,
    timeout_s: float,
    public_url: str,
) -> tuple[str, EventOutcome | None]:
    """The new job's slug and the workflow's outcome (None when a retried create finds its job
    already finished: the caller reads the job)."""
    _check_text(body)
    client = await clients.find(session, body.client_id)
    if client is None:
        raise Invalid(f"client_id: no client with id {body.client_id}")
    actor = actor_of(user)
    snapshot = clients.snapshot(client)
    slug = idem.job_slug() or new_slug()
    # Refuse a role that may not create jobs before any workflow exists for it.
    decision = lifecycle.apply(lifecycle.new_job(slug, snapshot), body, actor, datetime.now(UTC))
    if isinstance(decision, Refusal):
        raise EventRefused(decision)
    await session.commit()  # hold no database transaction while the workflow writes
    start = WithStartWorkflowOperation(
        JobWorkflow.run,
        JobInput(slug=slug, client=snapshot, job_url=f"{public_url}/api/v1/jobs/{slug}"),
        id=workflow_id(slug),
        task_queue=task_queue,
        # A retried create (same Idempotency-Key, so the same slug) finds the job it started.
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING
        if idem.key
        else WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=f"{snapshot.name}: {body.title}"[:200],
        static_details=f"Job `{slug}` for client {snapshot.id} ({snapshot.name})",
    )
    request = EventRequest(event=body, actor=actor, request_digest=idem.digest)
    handle = temporal.get_workflow_handle(workflow_id(slug))
    try:
        async with asyncio.timeout(timeout_s):
            outcome = await temporal.execute_update_with_start_workflow(
                JobWorkflow.apply_event, request, start_workflow_operation=start, id=idem.update_id
            )
    except WorkflowUpdateFailedError as failed:
        refusal = _refusal_from(failed)
        if refusal is None:
            raise
        raise EventRefused(refusal) from None
    except (TimeoutError, RPCTimeoutOrCancelledError):
        raise await _no_answer(handle, slug, idem, timeout_s) from None
    except RPCError as rpc:
        if rpc.status == RPCStatusCode.ALREADY_EXISTS and idem.key:
            # The keyed job was created and has already finished: answer from its projection.
            await get_row(session, user, slug)
            return slug, None
        raise Unavailable(f"the workflow service did not take the job: {rpc.message}") from None
    idem.check_same(outcome.request_digest)
    await _write(db, handle, outcome)
    return slug, outcome


async def check_event(
    session: AsyncSession, user: User | None, slug: str, event: ev._Event
) -> ev._Event:
    """What the API checks before the workflow decides, and the event as the job is to take it
    (quote and invoice lines priced from the price book: api/quotes/pricing.py); a preview of
    the event (the Send dialog's) is checked here too, so it refuses exactly what sending
    refuses."""
    if user is not None and user.role == Role.technician:
        await get_row(session, user, slug)  # not their job: simply not found
    try:
        ev.checked_at_the_edge(event)  # dates, money and quantities within models.bounds
    except ValidationError as out_of_range:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in out_of_range.errors()]
        ) from None
    _check_text(event)
    await _check_people(session, event)
    if isinstance(event, ev.QuoteDrafted | ev.InvoiceSent | ev.QuoteApproved | ev.QuoteDeclined):
        row = await get_row(session, user, slug)
        client = lifecycle.JobState.model_validate(row.state).client
        return await pricing.priced(session, client, event, from_customer=user is None)
    return event


async def send_event(
    session: AsyncSession,
    db: Database,
    temporal: TemporalClient,
    user: User | None,
    slug: str,
    event: ev._Event,
    idem: Idempotency,
    timeout_s: float,
    *,
    actor: lifecycle.Actor | None = None,
) -> EventOutcome | None:
    """The workflow's outcome, or None when a retried request finds its event already applied
    to a job that has since finished (the caller reads the job). The actor is the user's, or
    for the customer's own answer on their quote page (no user) the one given."""
    event = await check_event(session, user, slug, event)
    closeout = None
    if isinstance(event, ev.JobCompleted):
        # The fields configured now, for the workflow's validator to check.
        stored = await settings_store.load(session, settings_store.CLOSEOUT, CloseoutSettings)
        closeout = JobCloseout.of(stored)
    await session.commit()  # hold no database transaction while the workflow decides
    if actor is None:
        assert user is not None
        actor = actor_of(user)
    handle = temporal.get_workflow_handle(workflow_id(slug))
    request = EventRequest(event=event, actor=actor, closeout=closeout, request_digest=idem.digest)
    try:
        async with asyncio.timeout(timeout_s):
            outcome = await handle.execute_update(
                JobWorkflow.apply_event, request, id=idem.update_id
            )
    except (TimeoutError, RPCTimeoutOrCancelledError):
        raise await _no_answer(handle, slug, idem, timeout_s) from None
    except WorkflowUpdateFailedError as failed:
        refusal = _refusal_from(failed)
        if refusal is None:
            log.warning("job %s: the update failed: %r", slug, failed.cause)
            await _refresh_projection(handle)
            raise Unavailable("the job did not take the event this time; send it again") from None
        raise EventRefused(refusal) from None
    except RPCError as rpc:
        if rpc.status != RPCStatusCode.NOT_FOUND:
            raise Unavailable(f"the workflow service is not reachable: {rpc.message}") from None
        if await _applied_earlier(session, slug, event, idem):
            return None
        await _refuse_without_workflow(session, user, actor, slug, event)
    idem.check_same(outcome.request_digest)
    await _write(db, handle, outcome)
    return outcome


async def messages_of_request(
    session: AsyncSession, slug: str, idem: Idempotency
) -> list[OutboxMessage]:
    """The messages the event of an earlier request with this key queued."""
    row = (
        await session.exec(
            select(JobEvent).where(JobEvent.job_slug == slug, JobEvent.request_id == idem.update_id)
        )
    ).first()
    if row is None:
        return []
    prefix = f"job-{slug}:{row.seq}:"  # how activities/messages.py keys an event's messages
    rows = await session.exec(
        select(OutboxMessage)
        .where(
            OutboxMessage.job_slug == slug, col(OutboxMessage.idempotency_key).startswith(prefix)
        )
        .order_by(col(OutboxMessage.id))
    )
    return list(rows.all())


async def _applied_earlier(
    session: AsyncSession, slug: str, event: ev._Event, idem: Idempotency
) -> bool:
    """A retry whose event the job took before it finished: its timeline row says so."""
    if idem.update_id is None:
        return False
    row = (
        await session.exec(
            select(JobEvent).where(JobEvent.job_slug == slug, JobEvent.request_id == idem.update_id)
        )
    ).first()
    if row is None:
        return False
    if row.type != event.type or row.payload != event.model_dump(mode="json"):
        idem.check_same("a different request")
    return True


async def _no_answer(
    handle: WorkflowHandle[Any, Any], slug: str, idem: Idempotency, timeout_s: float
) -> Unavailable:
    """The 503 for an event the job did not answer in time, saying why as far as Temporal
    knows, and how to retry."""
    why = "no worker took its task in time"
    with contextlib.suppress(RPCError, TimeoutError):
        async with asyncio.timeout(2):
            pending = (await handle.describe()).raw_description.pending_workflow_task
        if pending.attempt > 1:
            why = (
                f"its workflow task is failing (attempt {pending.attempt}); "
                "ops can see why in the Temporal Web UI"
            )
    may_apply = "the event may still be applied"
    retry = (
        f"{may_apply}: send it again with the same {HEADER} ({idem.key!r}), which is safe"
        if idem.key
        else f"{may_apply}: check the job before sending it again "
        f"(send an {HEADER} to make retries safe)"
    )
    await _refresh_projection(handle)
    return Unavailable(f"job {slug!r} did not answer within {timeout_s:g} s: {why}; {retry}")


async def _refuse_without_workflow(
    session: AsyncSession, user: User | None, actor: lifecycle.Actor, slug: str, event: ev._Event
) -> NoReturn:
    """No running workflow: the job is unknown (404), or final — and the rules say why (409)."""
    row = await get_row(session, user, slug)
    state = lifecycle.JobState.model_validate(row.state)
    decision = lifecycle.apply(state, event, actor, datetime.now(UTC))
    if isinstance(decision, Refusal):
        raise EventRefused(decision)
    raise Unavailable(f"job {slug!r} has no running workflow; ops have been told") from None


async def _write(db: Database, handle: WorkflowHandle[Any, Any], outcome: EventOutcome) -> None:
    """Read-your-writes: the projection the workflow handed back is committed before the API
    answers (when the job settles a few seconds later, the workflow writes whatever of it is
    missing).

    The event is applied by now, so a database too busy to take the write must not become an
    error the client would retry (and apply twice): the workflow is asked to write it instead,
    retrying until the database takes it, and the answer is built from the outcome."""
    projection = outcome.projection
    if projection is None:
        return
    try:
        await db.run_in_one_go(lambda session: write_projection(session, db.dialect, projection))
    except DatabaseBusy as busy:
        log.warning("job %s: projection left to the workflow: %s", projection.state.slug, busy)
        await _refresh_projection(handle)


def with_records(timeline: list[JobEvent], projection: ProjectionInput) -> list[JobEvent]:
    """The stored timeline, with the projection's own records should the write not be there."""
    slug = projection.state.slug
    rows = {row.seq: row for row in timeline}
    for record in projection.records:
        rows.setdefault(record.seq, JobEvent(**timeline_row(slug, record)))
    return [rows[seq] for seq in sorted(rows)]


async def _refresh_projection(handle: WorkflowHandle[Any, Any]) -> None:
    """The workflow task that failed may have written the projection already: have the workflow
    write it again from a task that counts."""
    with contextlib.suppress(RPCError):
        await handle.signal(JobWorkflow.refresh_projection)


@dataclass(frozen=True)
class JobFilters:
    """The job list's filters; the exports take the same ones."""

    stage: str | None = None
    milestone: str | None = None
    client_id: int | None = None
    q: str | None = None
    stuck: bool | None = None
    unresulted: bool | None = None  # due a Sale / No Sale result and without one
    owner: str | None = None
    technician: str | None = None  # the job's assigned technician (username)
    waiting_on: str | None = None  # JobState.waiting_on: office, owner, customer, ...
    attention: str | None = None  # one of ATTENTION: why the board asks for attention
    open_only: bool = False  # leave out closed and canceled jobs (the board's default)


_OPEN_STAGE_VALUES = sorted(s.value for s in lifecycle.OPEN_STAGES)


def filtered(user: User, f: JobFilters) -> SelectOfScalar[Job]:
    """The jobs this user may see that match the filters (unordered)."""
    query = _narrowed(visibility.jobs(select(Job), user), f)
    if f.stage:
        query = query.where(Job.stage == f.stage)
    return query


def _narrowed(query: SelectOfScalar[Any], f: JobFilters) -> SelectOfScalar[Any]:
    """Every filter but the stage (the board counts each stage of the rest)."""
    if f.milestone:
        query = query.where(Job.milestone == f.milestone)
    if f.client_id is not None:
        query = query.where(Job.client_id == f.client_id)
    if f.stuck is not None:
        query = query.where(Job.stuck == f.stuck)
    if f.unresulted is not None:
        query = query.where(Job.unresulted == f.unresulted)
    if f.owner:
        query = query.where(Job.owner == f.owner)
    if f.technician:
        query = query.where(Job.assigned_tech == f.technician)
    if f.waiting_on:
        query = query.where(Job.waiting_on == f.waiting_on)
    if f.attention:
        query = query.where(attention_condition(f.attention))
    if f.open_only:
        # Named, not excluded: an index on the stage seeks the open stages, where NOT IN read
        # every closed job's entry too (most of a company's jobs, after a few years).
        query = query.where(col(Job.stage).in_(_OPEN_STAGE_VALUES))
    if f.q:
        # autoescape: a % or _ typed into the search box means itself, not "anything".
        text = f.q.lower()
        conditions: list[ColumnElement[bool]] = [
            func.lower(Job.title).contains(text, autoescape=True),
            func.lower(Job.client_name).contains(text, autoescape=True),
            col(Job.slug) == f.q.lower(),
        ]
        if f.q.isdigit():
            conditions.append(col(Job.number) == int(f.q))
        query = query.where(or_(*conditions))
    return query


# The lists' order: most recently changed first. The slug only breaks ties, and runs the same
# way as the time so that one index, (updated_at, slug) read backwards, gives the order whole:
# with the slug ascending, a page among thousands of jobs changed at the same instant (an
# import, a bulk update) sorted all of them to find its 50 (migration 0017).
LIST_ORDER = (col(Job.updated_at).desc(), col(Job.slug).desc())


# A text search's matches may all lie far down the lists' order (old closed jobs, for a client's
# name): walking the (updated_at, slug) index backwards for a page of them then reads most of the
# table (PostgreSQL at 100,000 jobs: 0.5 s). The matches are counted first, through the trigram
# indexes; when they are this few, they are taken whole and sorted instead. When they are many,
# the walk meets its page soon, and sorting them all would be the slow way (every job: 0.5 s).
FEW_MATCHES = 2_000


# The job list shows a job's columns only: its state (kept out of line on PostgreSQL, migration
# 0018) is left unread, and a row of the list raises if anything touches `row.state`. (The
# board's cards read it for their badges.)
UNREAD_STATE = defer(col(Job.state), raiseload=True)


def ordered(
    query: SelectOfScalar[Job], f: JobFilters, matches: int, order: tuple[Any, ...] = ()
) -> SelectOfScalar[Job]:
    """`query` (from `filtered`, `matches` rows) in `order` (the lists' by default), for a page."""
    if f.q and matches <= FEW_MATCHES:
        # MATERIALIZED keeps the planner from folding the matches back into the index walk.
        found = query.with_only_columns(col(Job.slug)).cte("text_matches")
        found = found.prefix_with("MATERIALIZED")
        query = select(Job).where(col(Job.slug).in_(select(found.c.slug)))
    return query.order_by(*(order or LIST_ORDER))


async def search(
    session: AsyncSession, user: User, filters: JobFilters, *, page: int, page_size: int
) -> tuple[list[Job], int]:
    query = filtered(user, filters)
    total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
    page_query = ordered(query, filters, total).offset((page - 1) * page_size).limit(page_size)
    rows = await session.exec(page_query.options(UNREAD_STATE))
    return list(rows.all()), total


# --- the board (/jobs in the office web app): counts, money and what needs attention ----------
#
# Everything here is read by SQL aggregates and small LIMITed queries over the jobs table's own
# columns (the board's are written by the projection from models/board.py), so the board of an
# office with 10,000 jobs never loads more rows than it shows, nor reads any job's state.

# Why the board asks for someone's attention, in the order the board lists them.
ATTENTION = ("stuck", "stale_quote", "parts_overdue", "unassigned", "unpaid", "unresulted")


def attention_condition(kind: str) -> ColumnElement[bool]:
    """The jobs that need attention for this reason (a value of ATTENTION); never NULL."""
    if kind not in ATTENTION:
        raise Invalid(f"attention: one of {', '.join(ATTENTION)}")
    return _BOARD_EXPRESSIONS.attention[kind]


def _attention_condition(kind: str) -> ColumnElement[bool]:
    match kind:
        case "stuck":  # held in a stage past its limit (a stale quote is flagged stuck too)
            return and_(col(Job.stuck), not_(col(Job.quote_stale)))
        case "stale_quote":  # models.board.quote_stale: unanswered after every follow-up
            return col(Job.quote_stale) == true()
        case "parts_overdue":  # models.board.parts_overdue: the reminder fired for a line
            return col(Job.parts_overdue) == true()
        case "unassigned":  # a lead nobody owns cannot be qualified
            return and_(col(Job.stage) == lifecycle.Stage.lead.value, col(Job.owner).is_(None))
        case "unpaid":  # models.board.unpaid: invoiced with nothing paid, or verified
            return col(Job.unpaid) == true()
        case "unresulted":  # no Sale / No Sale result N days after the quote went (or the cancel)
            return col(Job.unresulted) == true()
        case _:
            raise Invalid(f"attention: one of {', '.join(ATTENTION)}")


class _BoardExpressions:
    """The board's SQL expressions, built once: they never change, and building them anew for
    every query cost more than running the queries."""

    def __init__(self) -> None:
        self.attention = {kind: _attention_condition(kind) for kind in ATTENTION}
        self.tally = (
            func.sum(col(Job.amount)),
            *(func.sum(case((self.attention[kind], 1), else_=0)) for kind in ATTENTION),
        )
        self.flags = tuple(self.attention[kind].label(kind) for kind in ATTENTION)


_BOARD_EXPRESSIONS = _BoardExpressions()


@dataclass
class StageTally:
    """One stage's jobs among those matching the filters: how many, their worth, and how many
    of them need attention for each reason."""

    count: int = 0
    amount: Decimal = Decimal("0.00")
    attention: dict[str, int] = dataclasses.field(default_factory=dict)


async def board_tally(session: AsyncSession, user: User, f: JobFilters) -> dict[str, StageTally]:
    """Per stage, one aggregate over the jobs matching every filter but the stage: the board's
    column counts and totals, the stage picker's counts and the attention strip come from it."""
    query: Any = select(Job.stage, func.count(), *_BOARD_EXPRESSIONS.tally)
    query = _narrowed(visibility.jobs(query, user), f).group_by(Job.stage)
    tally: dict[str, StageTally] = {}
    for stage, count, amount, *flags in (await session.execute(query)).all():
        tally[stage] = StageTally(
            count=count,
            amount=_money(amount) or Decimal("0.00"),
            attention={kind: int(n or 0) for kind, n in zip(ATTENTION, flags, strict=True)},
        )
    return tally


def _money(amount: Any) -> Decimal | None:
    # SQLite sums a Numeric as a float: back to cents.
    return None if amount is None else Decimal(amount).quantize(Decimal("0.01"))


@dataclass
class FlaggedJob:
    """A job row as the board shows it: its worth and the reasons it needs attention."""

    row: Job
    amount: Decimal | None
    attention: list[str]


async def _flagged(
    session: AsyncSession, page: SelectOfScalar[Job], order: tuple[Any, ...]
) -> list[FlaggedJob]:
    """The jobs of `page` (ordered and limited), with their worth and attention flags: the page
    is chosen from narrow columns first, then only its rows are read whole."""
    slugs = page.with_only_columns(col(Job.slug)).subquery()
    query = (
        select(Job, *_BOARD_EXPRESSIONS.flags)
        .where(col(Job.slug).in_(select(slugs.c.slug)))
        .order_by(*order)
    )
    found = []
    for row, *flags in (await session.execute(query)).all():
        kinds = [kind for kind, flag in zip(ATTENTION, flags, strict=True) if flag]
        found.append(FlaggedJob(row=row, amount=_money(row.amount), attention=kinds))
    return found


async def board_column(
    session: AsyncSession,
    user: User,
    f: JobFilters,
    milestone: str,
    *,
    limit: int,
    total: int,
) -> list[FlaggedJob]:
    """The first `limit` cards of one milestone's column (`total` jobs): jobs needing attention
    first, then the most recently changed."""
    order = (col(Job.stuck).desc(), *LIST_ORDER)
    column = filtered(user, f).where(Job.milestone == milestone)
    return await _flagged(session, ordered(column, f, total, order).limit(limit), order)


async def board_list(
    session: AsyncSession, user: User, f: JobFilters, *, page: int, page_size: int, total: int
) -> list[FlaggedJob]:
    """One page of the board's list view, in the job list's order (its total: board_tally)."""
    query = ordered(filtered(user, f), f, total)
    return await _flagged(
        session, query.offset((page - 1) * page_size).limit(page_size), LIST_ORDER
    )


async def board_people(session: AsyncSession) -> list[User]:
    """Everyone the board's owner and technician pickers offer (active staff)."""
    rows = await session.exec(select(User).where(col(User.active)).order_by(col(User.username)))
    return list(rows.all())
