"""The Send dialog: preview a customer update, or turn it into the job's `customer_update_sent`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import EventRefused, Invalid
from api.jobs.schemas import EmailPreview, SendPreview, SendRequest
from api.jobs.service import check_event, get_row
from api.users.service import actor_of, display_name_of
from core import settings_store
from core.company import load_company
from core.settings_store import COMMUNICATIONS
from models import events as ev
from models import lifecycle
from models.communications import (
    CommunicationSettings,
    SmsPreview,
    customer_recipients,
    message_context,
    render,
    sms_segments,
)
from models.lifecycle import Refusal
from models.tables import OutboxMessage, User

# As the outbox keeps it (activities/messages.py cuts a longer rendered subject the same way).
_SUBJECT_MAX: int = OutboxMessage.__table__.c.subject.type.length  # type: ignore[attr-defined]


async def _settings(session: AsyncSession) -> CommunicationSettings:
    return await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)


async def check_sms_enabled(session: AsyncSession) -> None:
    """Asking for an SMS (Send, `quote_sent`) while SMS is turned off is refused, not ignored."""
    if not (await _settings(session)).sms_enabled:
        raise Invalid("sms: SMS is turned off in the communication settings")


async def as_event(session: AsyncSession, body: SendRequest) -> ev.CustomerUpdateSent:
    if body.sms:
        await check_sms_enabled(session)
    return ev.CustomerUpdateSent(
        message=body.message,
        to_email=body.to_email,
        bcc_me=body.bcc_me,
        sms=body.sms,
        sms_phone=body.sms_phone,
    )


async def preview(session: AsyncSession, user: User, slug: str, body: SendRequest) -> SendPreview:
    row = await get_row(session, user, slug)
    state = lifecycle.JobState.model_validate(row.state)
    event = await as_event(session, body)
    # What sending checks, by the same calls: a preview of what may not be sent is refused the
    # same way, first by the API's checks, then by the rules.
    await check_event(session, user, slug, event)
    decision = lifecycle.apply(state, event, actor_of(user), datetime.now(UTC))
    if isinstance(decision, Refusal):
        raise EventRefused(decision)
    comms = await _settings(session)
    company = await load_company(session)
    technician = state.schedule.technician if state.schedule else None
    context = message_context(
        state,
        comms,
        currency_symbol=company.currency_symbol,
        company_name=company.name,
        technician_name=await display_name_of(session, technician),
        message=body.message,
    )
    text = render(comms.template("customer_update"), context)
    to, bcc = customer_recipients(
        state, comms, to_email=body.to_email, bcc_email=user.email if body.bcc_me else None
    )
    segments, encoding = sms_segments(text.sms)
    return SendPreview(
        email=EmailPreview(to=to, bcc=bcc, subject=text.subject[:_SUBJECT_MAX], body=text.body),
        sms=SmsPreview(
            to=body.sms_phone or state.client.phone,
            body=text.sms,
            segments=segments,
            encoding=encoding,
        ),
    )
