"""Turning projection rows into what the API returns, with the events this user may send now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from api.outbox.schemas import public as outbox_public
from core import portal, quote_links
from models import lifecycle
from models.lifecycle import Actor, JobState
from models.outbox import IN_DOUBT
from models.reminders import is_stuck
from models.tables import Job, JobEvent, OutboxMessage

from .schemas import JobListItem, JobView, TimelineEntry, earlier_view, quote_view


@dataclass(frozen=True)
class PortalLinkView:
    url: str
    expires_at: datetime


async def quote_link_view(
    session: AsyncSession, secret_key: str, public_url: str, slug: str, state: JobState
) -> PortalLinkView | None:
    """The customer's link to the job's current quote version, while it opens."""
    if state.quote is None:  # no quote, no link: nothing to read
        return None
    link = await quote_links.latest_link(session, secret_key, slug)
    if link is None or link.version != state.quote.version:
        return None
    return PortalLinkView(link.url(public_url), link.expires_at)


async def portal_link_view(
    session: AsyncSession, secret_key: str, public_url: str, slug: str, state: JobState
) -> PortalLinkView | None:
    """The customer's closeout portal link, while it opens."""
    if state.completion is None:  # the job's closeout makes the link: nothing to read before
        return None
    link = await portal.link_for_job(session, secret_key, slug)
    return PortalLinkView(link.url(public_url), link.expires_at) if link else None


def state_of(row: Job) -> JobState:
    return JobState.model_validate(row.state)


def job_view(
    row: Job,
    timeline: list[JobEvent],
    communications: list[OutboxMessage],
    actor: Actor,
    portal: PortalLinkView | None = None,
    result: dict[str, Any] | None = None,
    quote_link: PortalLinkView | None = None,
    state: JobState | None = None,
) -> JobView:
    """`state`: the row's, when the caller has already parsed it."""
    return view_of_state(
        state or state_of(row),
        timeline,
        communications,
        actor,
        next_reminder_at=row.next_reminder_at,
        updated_at=row.updated_at,
        portal=portal,
        result=result,
        unresulted=row.unresulted,
        quote_link=quote_link,
    )


def view_of_state(
    s: JobState,
    timeline: list[JobEvent],
    communications: list[OutboxMessage],
    actor: Actor,
    *,
    next_reminder_at: datetime | None,
    updated_at: datetime,
    portal: PortalLinkView | None = None,
    result: dict[str, Any] | None = None,
    unresulted: bool = False,
    quote_link: PortalLinkView | None = None,
) -> JobView:
    assert s.stage is not None and s.milestone is not None and s.created_at is not None
    return JobView(
        slug=s.slug,
        number=s.number,
        title=s.title,
        description=s.description,
        source=s.source,
        priority=s.priority,
        site_address=s.site_address,
        stage=s.stage,
        milestone=s.milestone,
        waiting_on=s.waiting_on,
        client=s.client,
        owner=s.owner,
        allowed_events=lifecycle.allowed_events(s, actor),
        quote=quote_view(s.quote) if s.quote is not None else None,
        earlier_quotes=[earlier_view(q) for q in s.earlier_quotes],
        supplier_requests=s.supplier_requests,
        approval_pending=s.approval_pending,
        contract_amount=s.contract_amount,
        parts=s.parts,
        schedule=s.schedule,
        checklist=s.checklist,
        completion=s.completion,
        result=result,
        unresulted=unresulted,
        invoice=s.invoice,
        payments=s.payments,
        paid_total=s.paid_total,
        evidence_verified_at=s.evidence_verified_at,
        cancel_reason=s.cancel_reason,
        timeline=[
            TimelineEntry(
                seq=e.seq,
                type=e.type,
                actor=e.actor,
                actor_role=e.actor_role,
                at=e.at,
                summary=e.summary,
                payload=e.payload,
            )
            for e in timeline
        ],
        communications=[outbox_public(m) for m in communications],
        messages_in_doubt=sum(1 for m in communications if m.status == IN_DOUBT),
        next_reminder_at=next_reminder_at,
        stuck=is_stuck(s),
        quote_stale=s.reminders.quote_stale
        and s.quote is not None
        and s.reminders.follow_ups_for == s.quote.sent_at,
        follow_ups_sent=s.reminders.follow_ups_sent,
        portal_url=portal.url if portal else None,
        portal_expires_at=portal.expires_at if portal else None,
        quote_url=quote_link.url if quote_link else None,
        quote_url_expires_at=quote_link.expires_at if quote_link else None,
        seq=s.seq,
        created_at=s.created_at,
        updated_at=updated_at,
        stage_entered_at=s.stage_entered_at or s.created_at,
    )


def list_item(row: Job) -> JobListItem:
    return JobListItem(
        slug=row.slug,
        number=row.number,
        title=row.title,
        client_id=row.client_id,
        client_name=row.client_name,
        stage=lifecycle.Stage(row.stage),
        milestone=lifecycle.Milestone(row.milestone),
        owner=row.owner,
        assigned_tech=row.assigned_tech,
        priority=row.priority,
        waiting_on=row.waiting_on,
        stuck=row.stuck,
        unresulted=row.unresulted,
        result_type=row.result_type,
        contract_amount=row.contract_amount,
        next_reminder_at=row.next_reminder_at,
        stage_entered_at=row.stage_entered_at,
        updated_at=row.updated_at,
    )
