"""`make dev`'s demo data shows every board state on day one (issue 9 item 9).

The demo runs as `jobline dev` runs it, against the test stack: its HTTP part against a real
`jobline api` process, its backdated part (cli/demo.py: the stuck job and the stale quote) with
the stack's Temporal server, worker and database. What the board reads, the jobs table and its
attention conditions (api/jobs/service.py), must then hold a job in each state, flagged by the
workflow itself: nothing in the demo writes the projection, and the only setting it changes is
resulting's (turned on, as a sales team would, so the demo has results to show).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import col, select

from api.jobs.service import ATTENTION, attention_condition
from cli.demo import (
    BACKDATED_JOBS,
    DEMO_JOBS,
    DEMO_PRICEBOOK,
    DEMO_USERS,
    FOLLOW_UP_NOTE,
    backdate_demo_jobs,
    backdated_input,
    create_demo_data,
)
from core import settings_store
from core.settings_store import COMMUNICATIONS, QUOTES, RESULTING
from models.communications import CommunicationSettings
from models.lifecycle import ClientSnapshot, JobState, Stage
from models.quoting import QuoteSettings
from models.reminders import is_stuck
from models.resulting import ResultingSettings
from models.tables import Job, JobEvent, JobResult, PortalLink, PricebookItem, PricebookPrice
from tests.api.test_over_uvicorn import api_process
from tests.conftest import Stack
from tests.fakes.providers import wait_until

STATES = ("stuck", "stale_quote", "parts_overdue", "unassigned", "unpaid")


async def _rows(stack: Stack, client_ids: list[int]) -> list[tuple[Job, dict[str, bool]]]:
    """The demo's jobs, each with the board's attention flags."""
    labelled = [attention_condition(kind).label(kind) for kind in ATTENTION]
    async with stack.db.session() as session:
        found = await session.execute(
            select(Job, *labelled).where(col(Job.client_id).in_(client_ids))
        )
        return [(row[0], dict(zip(ATTENTION, row[1:], strict=True))) for row in found.all()]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_demo_shows_every_board_state_on_day_one(stack: Stack) -> None:
    tokens = {username: (role, stack.tokens[username]) for username, role, _ in DEMO_USERS}
    # The demo turns resulting on, taxes quotes and fills the price book (with a GOV price for
    # FAN-1, a SKU other tests quote at list price); the session's other tests find all of it
    # as it was.
    async with stack.db.session() as session:
        resulting_before = await settings_store.load(session, RESULTING, ResultingSettings)
        quotes_before = await settings_store.load(session, QUOTES, QuoteSettings)
        skus = [item["sku"] for item in DEMO_PRICEBOOK]
        known = await session.exec(
            select(PricebookItem.sku).where(col(PricebookItem.sku).in_(skus))
        )
        added = sorted(set(skus) - set(known.all()))
    try:
        with api_process(stack) as base:
            # A blocking client, as `jobline dev` uses it: in a thread, so the worker (in this
            # test's event loop) keeps running.
            clients = await asyncio.to_thread(create_demo_data, base, tokens)
            backdated = await backdate_demo_jobs(
                stack.temporal, stack.task_queue, stack.db, clients, base
            )
        await _the_demo_shows_every_board_state(stack, clients, backdated)
    finally:
        async with stack.db.session() as session:
            await settings_store.save(session, RESULTING, resulting_before, "test")
            await settings_store.save(session, QUOTES, quotes_before, "test")
            for table in (PricebookPrice, PricebookItem):
                await session.execute(delete(table).where(col(table.sku).in_(added)))


async def _the_demo_shows_every_board_state(
    stack: Stack, clients: list[dict[str, Any]], backdated: list[str]
) -> None:
    client_ids = [c["id"] for c in clients]
    expected = len(DEMO_JOBS) + len(BACKDATED_JOBS)

    async def every_state_shows() -> bool:
        rows = await _rows(stack, client_ids)
        flagged = {kind for _, flags in rows for kind, on in flags.items() if on}
        return len(rows) == expected and set(STATES) <= flagged

    await wait_until(every_state_shows, 60, "every attention state on the demo's board")
    rows = await _rows(stack, client_ids)
    by_slug = {job.slug: (job, flags) for job, flags in rows}
    stages = [job.stage for job, _ in rows]
    for stage in ("lead", "prospect", "quote_sent", "awaiting_parts", "scheduled", "on_site"):
        assert stage in stages, stages
    for stage in ("completed", "invoiced", "closed", "canceled"):
        assert stage in stages, stages

    # The stuck job: held in `prospect` past its limit, flagged by the workflow's stuck check.
    stuck, flags = by_slug[backdated[0]]
    state = JobState.model_validate(stuck.state)
    assert (stuck.stage, stuck.stuck, flags["stuck"], flags["stale_quote"]) == (
        "prospect",
        True,
        True,
        False,
    )
    assert state.reminders.stuck_since == state.stage_entered_at
    assert datetime.now(UTC) - state.stage_entered_at > timedelta(hours=72)  # type: ignore[operator]

    # The stale quote: every follow-up recorded, then flagged stale by the workflow.
    stale, flags = by_slug[backdated[1]]
    state = JobState.model_validate(stale.state)
    assert (stale.stage, stale.stuck, flags["stale_quote"], flags["stuck"]) == (
        "quote_sent",
        True,
        True,
        False,
    )
    async with stack.db.session() as session:
        comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
        timeline = (
            await session.exec(
                select(JobEvent).where(JobEvent.job_slug == stale.slug).order_by(col(JobEvent.seq))
            )
        ).all()
        portal_links = (
            await session.exec(
                select(PortalLink.job_slug).where(
                    col(PortalLink.job_slug).in_(
                        [j.slug for j, _ in rows if j.stage == "completed"]
                    )
                )
            )
        ).all()
    assert state.reminders.quote_stale and state.reminders.follow_ups_sent == comms.max_follow_ups
    kinds = [event.type for event in timeline]
    assert kinds[-1] == "quote_stale" and kinds.count("quote_follow_up") == comms.max_follow_ups
    # The backdated entries say so; the stale flag is the workflow's own, raised now.
    assert all(e.summary.endswith(FOLLOW_UP_NOTE) for e in timeline if e.type == "quote_follow_up")
    assert timeline[-1].actor == "jobline" and "backdated" not in timeline[-1].summary
    assert datetime.now(UTC) - timeline[-1].at.replace(tzinfo=UTC) < timedelta(minutes=5)

    # Completed with its portal link; the overdue parts alerted the office.
    assert portal_links, "the completed demo job has a portal link"
    overdue = [job for job, flags in rows if flags["parts_overdue"]]
    assert [job.stage for job in overdue] == ["awaiting_parts"]
    assert JobState.model_validate(overdue[0].state).reminders.parts_overdue_skus == ["FAN-18"]

    # Resulted: the closed job a Sale; the canceled one a No Sale, resubmitted (two revisions).
    # The stale quote, sent 13 days ago, is long due a result: flagged by its resulting workflow.
    async def stale_quote_flagged() -> bool:
        async with stack.db.session() as session:
            job = await session.get(Job, stale.slug, populate_existing=True)
        return job is not None and job.unresulted

    await wait_until(stale_quote_flagged, 30, "the stale quote flagged unresulted")
    async with stack.db.session() as session:
        revisions = (
            await session.exec(
                select(JobResult.job_slug, JobResult.type).where(
                    col(JobResult.job_slug).in_(list(by_slug))
                )
            )
        ).all()
    by_stage = {job.stage: job.slug for job, _ in rows if job.stage in ("closed", "canceled")}
    assert sorted(t for s, t in revisions if s == by_stage["closed"]) == ["sale"]
    assert sorted(t for s, t in revisions if s == by_stage["canceled"]) == ["no_sale"] * 2


def test_backdating_uses_the_rules_and_leaves_the_flags_to_the_workflow() -> None:
    """Pure: the backdated start state is what the rules make of the events at their past
    times; the follow-ups that fell due are recorded, and neither flag is raised yet."""
    now = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    client = ClientSnapshot(id=1, name="Harbor View Apartments", email="f@harborview.example")
    settings = CommunicationSettings()
    stuck_input = backdated_input(BACKDATED_JOBS[0], "stuck001", client, settings, now, "http://x")
    stale_input = backdated_input(BACKDATED_JOBS[1], "stale001", client, settings, now, "http://x")
    stuck, stale = stuck_input.state, stale_input.state
    assert stuck is not None and stale is not None
    assert stuck.stage == Stage.prospect and stuck.owner == "sam"
    assert stuck.stage_entered_at == now - timedelta(days=5)
    assert not is_stuck(stuck) and not is_stuck(stale)
    assert stale.stage == Stage.quote_sent and stale.quote is not None
    assert stale.quote.sent_at == now - timedelta(days=13)
    assert stale.reminders.follow_ups_sent == settings.max_follow_ups
    assert [r.seq for r in stale_input.unprojected] == list(range(1, stale.seq + 1))
    follow_ups: list[Any] = [r for r in stale_input.unprojected if r.type == "quote_follow_up"]
    assert all(r.at < now for r in follow_ups) and len(follow_ups) == 3
