"""A data set for the report tests: jobs with known histories, and the reports' answers computed
from it in plain Python — independently of api/reports/service.py (no SQL, no shared helpers).

`build(rng)` makes the jobs in memory (their events with the stage each left the job in, result
revisions with their forms, quote follow-ups); `write(db, jobs)` inserts them as the projection
and the workflows' activities would have; the `expected_*` functions answer each report from the
in-memory jobs. The company's zone is America/New_York, and some moments sit on month boundaries
in UTC that fall in the previous month there.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from api.reports.schemas import REPORT_NAMES

ZONE = ZoneInfo("America/New_York")
NAMES = REPORT_NAMES
OWNERS = ("sam", "sue", "mia", None)
SUBMITTERS = ("sam", "sue", "olga", "mia")
START = datetime(2026, 1, 1, 12, tzinfo=UTC)
CANCEL_REASONS = (
    "Customer went quiet",
    "Too expensive",
    '=HYPERLINK("http://x")',
    " Too expensive ",
)
FINAL = {"closed", "canceled"}
OPEN_STAGES = [
    "lead",
    "prospect",
    "quoting",
    "quote_sent",
    "saving",
    "approved",
    "awaiting_parts",
    "ready_to_schedule",
    "scheduled",
    "dispatched",
    "on_site",
    "completed",
    "invoiced",
    "verified",
]
MILESTONE = {
    "lead": "Lead",
    "prospect": "Prospect",
    "quoting": "Prospect",
    "quote_sent": "Prospect",
    "saving": "Prospect",
    "approved": "Approved",
    "awaiting_parts": "Approved",
    "ready_to_schedule": "Approved",
    "scheduled": "Approved",
    "dispatched": "Approved",
    "on_site": "Approved",
    "completed": "Completed",
    "invoiced": "Invoiced",
    "verified": "Invoiced",
    "closed": "Closed",
    "canceled": "Canceled",
}
AFTER_APPROVAL = [
    ("parts_ordered", "awaiting_parts"),
    ("parts_delivered", "ready_to_schedule"),
    ("job_scheduled", "scheduled"),
    ("tech_dispatched", "dispatched"),
    ("tech_checked_in", "on_site"),
    ("job_completed", "completed"),
    ("invoice_sent", "invoiced"),
    ("evidence_verified", "verified"),
    ("payment_recorded", "closed"),
]
QUOTING = [
    ("owner_assigned", "lead"),
    ("lead_qualified", "prospect"),
    ("quote_drafted", "quoting"),
    ("quote_sent", "quote_sent"),
]
DECLINED = [
    ("quote_declined", "saving"),
    ("quote_drafted", "quoting"),
    ("quote_sent", "quote_sent"),
]
SALE_FORM = [
    {
        "key": "sale_amount",
        "label": "Sale amount",
        "type": "currency",
        "required": True,
        "options": [],
    },
    {
        "key": "financing",
        "label": "Financing",
        "type": "checkbox",
        "required": False,
        "options": [],
    },
    {"key": "notes", "label": "Notes", "type": "text", "required": False, "options": []},
]
OLD_SALE_FORM = SALE_FORM[:2]  # before "notes" was added
NO_SALE_FORM = [
    {
        "key": "loss_reason",
        "label": "Why we lost it",
        "type": "dropdown",
        "required": True,
        "options": ["Price", "Timing", "Went with competitor"],
    },
    {"key": "competitor", "label": "Competitor", "type": "text", "required": False, "options": []},
    {
        "key": "next_step",
        "label": "Next step",
        "type": "dropdown",
        "required": False,
        "options": ["Call in spring", "None"],
    },
]
# Results submitted before this day used the older forms (the admin added fields and relabelled).
FORMS_CHANGED = datetime(2026, 3, 20, tzinfo=UTC)
OLD_NO_SALE_FORM = [{**NO_SALE_FORM[0], "label": "Reason lost"}, NO_SALE_FORM[1]]


@dataclass
class Event:
    seq: int
    type: str
    at: datetime
    stage: str | None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Revision:
    revision: int
    type: str
    fields: dict[str, Any]
    form: list[dict[str, Any]]
    amount: Decimal | None
    submitted_by: str
    submitted_at: datetime


@dataclass
class FollowUp:
    at: datetime
    channel: str


@dataclass
class TestJob:
    slug: str
    title: str
    owner: str | None
    created_at: datetime
    events: list[Event]
    amount: Decimal
    contract_amount: Decimal | None = None
    number: int | None = None
    flags: dict[str, bool] = field(default_factory=dict)
    waiting_on: str = ""
    revisions: list[Revision] = field(default_factory=list)
    follow_ups: list[FollowUp] = field(default_factory=list)
    unresulted: bool = False
    resulting_due_at: datetime | None = None

    @property
    def stage(self) -> str:
        return next(e.stage for e in reversed(self.events) if e.stage is not None)

    @property
    def stage_entered_at(self) -> datetime:
        entered = self.events[-1].at
        for e in reversed(self.events):
            if e.stage is None:
                continue
            if e.stage != self.stage:
                break
            entered = e.at
        return entered

    @property
    def current(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None


def build(rng: random.Random, count: int = 90) -> list[TestJob]:
    jobs: list[TestJob] = []
    number = 100
    for i in range(count):
        owner = rng.choice(OWNERS)
        # A few jobs start on a UTC month's first hours: still the previous month in New York.
        if i % 15 == 0:
            created = datetime(2026, 2 + i % 5, 1, 2, 30, tzinfo=UTC)
        else:
            created = START + timedelta(hours=rng.randint(0, 24 * 150))
        steps: list[tuple[str, str]] = [("job_created", "lead")]
        if rng.random() < 0.12:
            steps += [("owner_assigned", "lead"), ("emergency_dispatch", "ready_to_schedule")]
            steps += AFTER_APPROVAL[2:]
        else:
            steps += QUOTING
            if rng.random() < 0.3:
                steps += DECLINED
            steps += [("quote_approved", "approved")] + AFTER_APPROVAL
        cut = rng.randint(1, len(steps))
        steps = steps[:cut]
        stages_so_far = [stage for _, stage in steps]
        if rng.random() < 0.2 and "completed" not in stages_so_far:
            steps.append(("job_canceled", "canceled"))
        events: list[Event] = []
        at = created
        seq = 0
        approved_at = None
        for type_, stage in steps:
            seq += 1
            payload: dict[str, Any] = {"type": type_}
            if type_ == "job_canceled":
                payload["reason"] = rng.choice(CANCEL_REASONS)
            events.append(Event(seq, type_, at, stage, payload))
            if type_ in ("quote_approved", "emergency_dispatch"):
                approved_at = at
            if rng.random() < 0.3:  # a note: the stage stays
                seq += 1
                events.append(Event(seq, "note_added", at + timedelta(minutes=30), stage, {}))
            at = at + timedelta(hours=rng.randint(1, 120), minutes=rng.randint(0, 59))
        if i % 15 == 7 and approved_at is not None:
            # An approval on the UTC first of a month: the last evening of the month before in NY.
            shift = datetime(2026, 4, 1, 2, 0, tzinfo=UTC) - approved_at
            for e in events:
                e.at += shift
            created += shift
        if i % 11 == 3:
            # Written before migration 0010: every event but the latest has no stage.
            for e in events[:-1]:
                e.stage = None
        amount = Decimal(rng.randint(100, 9000)) + Decimal("0.50")
        job = TestJob(
            slug=f"rep{i:04d}",
            title=f"Job {i}" if i % 9 else "=1+2",
            owner=owner,
            created_at=created,
            events=events,
            amount=amount,
        )
        if approved_at is not None:
            number += 1
            job.number = number
            job.contract_amount = amount
        open_job = job.stage not in FINAL
        job.flags = {
            "stuck": open_job and rng.random() < 0.2,
            "quote_stale": job.stage == "quote_sent" and rng.random() < 0.5,
            "parts_overdue": job.stage == "awaiting_parts" and rng.random() < 0.5,
            "unpaid": job.stage in ("invoiced", "verified") and rng.random() < 0.5,
        }
        if job.flags["parts_overdue"]:
            job.waiting_on = "parts"
        _add_follow_ups(job, rng)
        _add_results(job, rng)
        jobs.append(job)
    return jobs


def _add_follow_ups(job: TestJob, rng: random.Random) -> None:
    sends = [e for e in job.events if e.type == "quote_sent"]
    for sent in sends:
        later = [e for e in job.events if e.seq > sent.seq and e.type != "note_added"]
        until = later[0].at if later else sent.at + timedelta(days=30)
        at = sent.at + timedelta(hours=1)
        for _ in range(rng.randint(0, 3)):
            at += timedelta(minutes=rng.randint(1, 4000))
            if at >= until:
                break
            job.follow_ups.append(FollowUp(at, "email"))
            if rng.random() < 0.3:
                job.follow_ups.append(FollowUp(at + timedelta(seconds=2), "sms"))


def _add_results(job: TestJob, rng: random.Random) -> None:
    if rng.random() < 0.35:
        job.unresulted = True
        job.resulting_due_at = job.created_at + timedelta(days=rng.randint(5, 40))
        return
    if rng.random() < 0.35:
        return
    at = job.events[-1].at + timedelta(hours=3)
    for revision in range(1, rng.choice((1, 1, 1, 2, 3)) + 1):
        kind = rng.choice(("sale", "no_sale"))
        old = at < FORMS_CHANGED
        if kind == "sale":
            form = OLD_SALE_FORM if old else SALE_FORM
            amount = Decimal(rng.randint(50, 5000))
            fields: dict[str, Any] = {"sale_amount": f"{amount}.00"}
            if rng.random() < 0.5:
                fields["financing"] = rng.random() < 0.5
            if not old and rng.random() < 0.4:
                fields["notes"] = "paid deposit"
        else:
            form = OLD_NO_SALE_FORM if old else NO_SALE_FORM
            amount = None
            fields = {"loss_reason": rng.choice(NO_SALE_FORM[0]["options"])}
            if rng.random() < 0.5:
                fields["competitor"] = "=ACME"
            if not old and rng.random() < 0.5:
                fields["next_step"] = rng.choice(NO_SALE_FORM[2]["options"])
        job.revisions.append(
            Revision(revision, kind, fields, form, amount, rng.choice(SUBMITTERS), at)
        )
        at += timedelta(hours=rng.randint(1, 300))


# --- writing them --------------------------------------------------------------------------------


async def write(db: Any, jobs: list[TestJob]) -> None:
    from sqlalchemy import insert

    from core.stage_visits import backfill
    from models.tables import Client, Job, JobEvent, JobResult, OutboxMessage

    async with db.session() as session:
        connection = await session.connection()
        client_id = (
            await connection.execute(
                insert(Client).values(name="Report Client").returning(Client.id)
            )
        ).scalar_one()
        for job in jobs:
            current = job.current
            await connection.execute(
                insert(Job).values(
                    slug=job.slug,
                    seq=job.events[-1].seq,
                    number=job.number,
                    title=job.title,
                    client_id=client_id,
                    client_name="Report Client",
                    stage=job.stage,
                    milestone=MILESTONE[job.stage],
                    owner=job.owner,
                    waiting_on=job.waiting_on,
                    stuck=job.flags["stuck"],
                    quote_stale=job.flags["quote_stale"],
                    parts_overdue=job.flags["parts_overdue"],
                    unpaid=job.flags["unpaid"],
                    contract_amount=job.contract_amount,
                    amount=job.amount,
                    created_at=job.created_at,
                    updated_at=job.events[-1].at,
                    stage_entered_at=job.stage_entered_at,
                    state={},
                    result_type=current.type if current else None,
                    result_revision=current.revision if current else 0,
                    result_amount=current.amount if current else None,
                    resulted_at=current.submitted_at if current else None,
                    unresulted=job.unresulted,
                    resulting_due_at=job.resulting_due_at,
                )
            )
            await connection.execute(
                insert(JobEvent),
                [
                    {
                        "job_slug": job.slug,
                        "seq": e.seq,
                        "type": e.type,
                        "actor": "olga",
                        "actor_role": "office",
                        "at": e.at,
                        "summary": e.type,
                        "payload": e.payload,
                        "stage": e.stage,
                    }
                    for e in job.events
                ],
            )
            if job.revisions:
                await connection.execute(
                    insert(JobResult),
                    [
                        {
                            "job_slug": job.slug,
                            "revision": r.revision,
                            "type": r.type,
                            "fields": r.fields,
                            "form": r.form,
                            "amount": r.amount,
                            "submitted_by": r.submitted_by,
                            "submitted_at": r.submitted_at,
                        }
                        for r in job.revisions
                    ],
                )
            for n, f in enumerate(job.follow_ups):
                await connection.execute(
                    insert(OutboxMessage).values(
                        idempotency_key=f"{job.slug}:{n}:quote_follow_up:{f.channel}",
                        job_slug=job.slug,
                        channel=f.channel,
                        purpose="quote_follow_up",
                        to="customer@example.com",
                        cc=[],
                        bcc=[],
                        attachments=[],
                        body="Following up on your quote",
                        status="captured",
                        created_at=f.at,
                    )
                )
        # Other messages of the same jobs are not follow-ups.
        await connection.execute(
            insert(OutboxMessage).values(
                idempotency_key="other:quote",
                job_slug=jobs[0].slug,
                channel="email",
                purpose="quote",
                to="customer@example.com",
                cc=[],
                bcc=[],
                attachments=[],
                body="Your quote",
                created_at=START,
            )
        )
        # The stage visits the projection would have written, from the timelines, as the
        # migration makes them for timelines already stored.
        await connection.run_sync(backfill)


# --- the answers, independently ------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    start: date | None = None
    end: date | None = None
    owner: str | None = None

    def has(self, moment: datetime) -> bool:
        local_day = moment.astimezone(ZONE).date()
        if self.start is not None and local_day < self.start:
            return False
        return not (self.end is not None and local_day > self.end)

    def owns(self, job: TestJob) -> bool:
        return self.owner is None or job.owner == self.owner

    def params(self) -> dict[str, str]:
        out = {}
        if self.start:
            out["from"] = self.start.isoformat()
        if self.end:
            out["to"] = self.end.isoformat()
        if self.owner:
            out["owner"] = self.owner
        return out


def month(moment: datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m")


def money(value: Decimal | int) -> str:
    return f"{Decimal(value):.2f}"


def expected_pipeline(jobs: list[TestJob], p: Period) -> dict[str, Any]:
    counts: Counter[str] = Counter()
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for job in jobs:
        if p.owns(job) and p.has(job.created_at) and job.stage not in FINAL:
            counts[job.stage] += 1
            amounts[job.stage] += job.amount
    return {
        "rows": [
            {
                "stage": stage,
                "milestone": MILESTONE[stage],
                "count": counts[stage],
                "amount": money(amounts[stage]),
            }
            for stage in OPEN_STAGES
        ],
        "count": sum(counts.values()),
        "amount": money(sum(amounts.values(), Decimal(0))),
    }


def expected_sales(jobs: list[TestJob], p: Period) -> dict[tuple[str, str | None], list[Any]]:
    cells: dict[tuple[str, str | None], list[Any]] = defaultdict(
        lambda: [0, Decimal(0), 0, Decimal(0)]
    )
    for job in jobs:
        if not p.owns(job):
            continue
        for e in job.events:
            if e.type in ("quote_approved", "approval_granted", "emergency_dispatch") and p.has(
                e.at
            ):
                cell = cells[(month(e.at), job.owner)]
                cell[0] += 1
                cell[1] += job.contract_amount or 0
        current = job.current
        if current and current.type == "sale" and p.has(current.submitted_at):
            cell = cells[(month(current.submitted_at), job.owner)]
            cell[2] += 1
            cell[3] += current.amount or 0
    return cells


def expected_conversion(jobs: list[TestJob], p: Period) -> dict[str | None, tuple[int, ...]]:
    rows: dict[str | None, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for job in jobs:
        if p.owns(job) and p.has(job.created_at):
            row = rows[job.owner]
            row[0] += 1
            row[1] += job.number is not None
            row[2] += job.stage == "closed"
            row[3] += job.stage == "canceled"
    return {owner: tuple(row) for owner, row in rows.items()}


def expected_loss_reasons(
    jobs: list[TestJob], p: Period
) -> tuple[Counter[tuple[str, str, str]], int, int]:
    counts: Counter[tuple[str, str, str]] = Counter()
    no_sales = cancels = 0
    for job in jobs:
        if not p.owns(job):
            continue
        current = job.current
        if current and current.type == "no_sale" and p.has(current.submitted_at):
            no_sales += 1
            for f in current.form:
                if f["type"] == "dropdown" and f["key"] in current.fields:
                    counts[("no_sale", f["key"], current.fields[f["key"]])] += 1
        for e in job.events:
            if e.type == "job_canceled" and p.has(e.at):
                cancels += 1
                counts[("canceled", "reason", e.payload["reason"].strip())] += 1
    return counts, no_sales, cancels


def visits(job: TestJob, now: datetime) -> list[tuple[str, datetime, float, bool]]:
    """(stage, began, hours, still open) of each visit, walking the events one by one."""
    out: list[tuple[str, datetime, float, bool]] = []
    staged = [e for e in job.events if e.stage is not None]
    current: tuple[str, datetime] | None = None
    for e in staged:
        if current is None or e.stage != current[0]:
            if current is not None:
                out.append(
                    (current[0], current[1], (e.at - current[1]).total_seconds() / 3600, False)
                )
            current = (e.stage, e.at)  # type: ignore[assignment]
    if current is not None:
        out.append((current[0], current[1], (now - current[1]).total_seconds() / 3600, True))
    return [v for v in out if v[0] not in FINAL]


def cont_percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def expected_time_in_stage(
    jobs: list[TestJob], p: Period, now: datetime
) -> dict[str, tuple[Any, ...]]:
    lengths: dict[str, list[float]] = defaultdict(list)
    still: Counter[str] = Counter()
    for job in jobs:
        if not p.owns(job):
            continue
        for stage, began, hours, is_open in visits(job, now):
            if p.has(began):
                lengths[stage].append(hours)
                still[stage] += is_open
    return {
        stage: (
            len(lengths[stage]),
            still[stage],
            cont_percentile(lengths[stage], 0.5),
            cont_percentile(lengths[stage], 0.9),
        )
        for stage in OPEN_STAGES
    }


def reasons_of(job: TestJob) -> list[str]:
    flags = {**job.flags, "unresulted": job.unresulted}
    return [
        f for f in ("stuck", "quote_stale", "parts_overdue", "unpaid", "unresulted") if flags[f]
    ]


def expected_stuck(jobs: list[TestJob], p: Period) -> list[TestJob]:
    found = [j for j in jobs if p.owns(j) and p.has(j.created_at) and reasons_of(j)]
    return sorted(found, key=lambda j: (j.stage_entered_at, j.slug))


def expected_follow_ups(
    jobs: list[TestJob], p: Period
) -> dict[tuple[str, str | None], Counter[str]]:
    cells: dict[tuple[str, str | None], Counter[str]] = defaultdict(Counter)
    outcome_of = {
        "quote_approved": "approved",
        "approval_granted": "approved",
        "quote_declined": "declined",
        "job_canceled": "canceled",
    }
    for job in jobs:
        if not p.owns(job):
            continue
        sent = [f for f in job.follow_ups if p.has(f.at)]
        for f in sent:
            cells[(month(f.at), job.owner)]["sent"] += 1
        if not sent:
            continue
        last = max(f.at for f in sent)
        after = [e for e in job.events if e.at > last and e.type in outcome_of]
        outcome = outcome_of[after[0].type] if after else "waiting"
        cell = cells[(month(last), job.owner)]
        cell["quotes"] += 1
        cell[outcome] += 1
    return cells


def expected_resulting(jobs: list[TestJob], p: Period) -> dict[str, Any]:
    totals = {"sale": [0, Decimal(0)], "no_sale": [0, Decimal(0)]}
    resubmitted = []
    by_user: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    completion: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    unresulted = []
    for job in jobs:
        if not p.owns(job):
            continue
        if job.unresulted and p.has(job.created_at):
            unresulted.append(job.slug)
        for r in job.revisions:
            if p.has(r.submitted_at):
                by_user[r.submitted_by][0] += 1
                by_user[r.submitted_by][1] += r.revision > 1
        current = job.current
        if current is None or not p.has(current.submitted_at):
            continue
        totals[current.type][0] += 1
        totals[current.type][1] += current.amount or 0
        if current.revision > 1:
            resubmitted.append((job.slug, current.revision))
        for f in current.form:
            if not f["required"]:
                cell = completion[(current.type, f["key"])]
                cell[0] += 1
                cell[1] += f["key"] in current.fields
    return {
        "totals": totals,
        "resubmitted": sorted(resubmitted, key=lambda x: (-x[1], x[0])),
        "by_user": {u: tuple(v) for u, v in by_user.items()},
        "completion": {k: tuple(v) for k, v in completion.items()},
        "unresulted": sorted(unresulted),
    }


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZONE)
