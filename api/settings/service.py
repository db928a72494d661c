"""The settings' rules beyond their models, for the JSON API and the settings pages alike.

Who may change settings, what a template must do before it is saved (render for a sample job),
what a closeout webhook may point at, what a logo upload may be, and where the company's one
identity is stored: its name and time zone in the communication settings (DESIGN.md §4), the rest
of its look in the branding settings, whose own `company_name` stays empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Invalid, NotPermitted, TooLarge
from core import documents, settings_store
from core.company import Company
from core.settings_store import BRANDING, CLOSEOUT, COMMUNICATIONS
from models import events as ev
from models import lifecycle
from models.branding import LOGO_EXTENSIONS, BrandingSettings, logo_type
from models.closeout import CloseoutSettings
from models.communications import (
    MERGE_FIELDS,
    CommunicationSettings,
    MessageTemplate,
    message_context,
    render,
)
from models.lifecycle import Actor, ClientSnapshot, JobState, Role
from models.tables import User
from models.webhook_target import explain, url_refusal

# Everyone reads the settings; only these roles change them.
SETTINGS_WRITERS: tuple[Role, ...] = (Role.admin,)

MAX_LOGO_BYTES = 1024 * 1024
# The upload's whole body: the image, and room for the form around it (the branding page sends
# its other fields in the same form).
LOGO_BODY_BYTES = MAX_LOGO_BYTES + 16 * 1024

# What a template is tried with before it is saved: a job with every detail, and one with none
# (no quote, no number, no schedule yet), as messages are rendered for both. The first is also
# the sample job of the settings page's preview.
SAMPLE_JOBS: tuple[dict[str, str], ...] = (
    {
        **{name: f"sample {name.replace('_', ' ')}" for name in MERGE_FIELDS},
        "job_number": "1042",
        "quote_total": "1,234.50",
        "quote_version": "2",
        "invoice_total": "1,234.50",
        "amount_due": "234.50",
    },
    {},
)


def may_change(user: User) -> bool:
    return user.role in SETTINGS_WRITERS


def check_may_change(user: User) -> None:
    if not may_change(user):
        allowed = ", ".join(sorted(r.value for r in SETTINGS_WRITERS))
        raise NotPermitted(f"changing settings is for: {allowed}; you are {user.role}")


# --- communications ---------------------------------------------------------------------------


def check_templates_render(body: CommunicationSettings) -> None:
    """A template that parses but fails to render (`{{ client_name.nickname }}`, `{{ 1 / 0 }}`)
    would fail every message of its purpose, and hold the event that sends it: refused here."""
    for purpose, template in body.templates.items():
        for part in ("email_subject", "email_body", "sms"):
            alone = MessageTemplate(email_subject="-", email_body="-").model_copy(
                update={part: getattr(template, part)}
            )
            for context in SAMPLE_JOBS:
                try:
                    render(alone, context)
                except Exception as error:  # whatever the template does wrong
                    raise Invalid(
                        f"templates.{purpose}.{part}: the template cannot be rendered: {error}"
                    ) from None


async def save_communications(
    session: AsyncSession, settings: CommunicationSettings, username: str
) -> CommunicationSettings:
    """Replaces the communication settings (running jobs use them from their next wait on)."""
    check_templates_render(settings)
    await settings_store.save(session, COMMUNICATIONS, settings, username)
    # A company name stored in branding before it moved here would still be the one shown.
    branding = await settings_store.load(session, BRANDING, BrandingSettings)
    if branding.company_name is not None:
        stored = branding.model_copy(update={"company_name": None})
        await settings_store.save(session, BRANDING, stored, username)
    return settings


# --- closeout ---------------------------------------------------------------------------------


def check_webhook_url(url: str | None, *, allow_private: bool) -> None:
    """A webhook must name a public internet host (unless the operator allows private ones)."""
    if url and not allow_private and (reason := url_refusal(url)):
        raise Invalid(f"webhook_url: {explain(reason)}")


async def closeout_document(
    session: AsyncSession, data: dict[str, Any], *, keep_secret: bool
) -> CloseoutSettings:
    """The closeout settings `data` describes, with the stored webhook secret when `keep_secret`
    (raises pydantic's ValidationError)."""
    data = dict(data)
    if keep_secret:
        stored = await settings_store.load(session, CLOSEOUT, CloseoutSettings)
        data["webhook_secret"] = stored.webhook_secret
    return CloseoutSettings.model_validate(data)


# --- branding and the company's identity --------------------------------------------------------


async def branding_view(session: AsyncSession) -> BrandingSettings:
    """The branding settings as read: `company_name` is the company's one name."""
    comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    branding = await settings_store.load(session, BRANDING, BrandingSettings)
    return branding.model_copy(update={"company_name": branding.company_name or comms.company_name})


async def check_logo_document(session: AsyncSession, document_id: str | None) -> None:
    if document_id is not None:
        document = await documents.load(session, document_id)
        if document is None or document.kind != "logo":
            raise Invalid(
                "logo_document_id: no uploaded logo has this id; upload one with "
                "POST /api/v1/settings/branding/logo"
            )


async def save_branding(
    session: AsyncSession,
    branding: BrandingSettings,
    username: str,
    *,
    timezone: str | None = None,
) -> BrandingSettings:
    """Replaces the branding settings. A company name (and a time zone) given goes to the
    communication settings, where the company's one name is kept; branding keeps none."""
    await check_logo_document(session, branding.logo_document_id)
    comms = await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)
    identity: dict[str, str] = {}
    if branding.company_name is not None and branding.company_name != comms.company_name:
        identity["company_name"] = branding.company_name
    if timezone is not None and timezone != comms.timezone:
        identity["timezone"] = timezone
    if identity:
        # Validated again as a whole document (the zone's name, the name's length).
        comms = CommunicationSettings.model_validate({**comms.model_dump(), **identity})
        await settings_store.save(session, COMMUNICATIONS, comms, username)
    await settings_store.save(
        session, BRANDING, branding.model_copy(update={"company_name": None}), username
    )
    return branding.model_copy(update={"company_name": comms.company_name})


def check_logo(content: bytes) -> str:
    """The image type of an uploaded logo, or why it is refused."""
    if len(content) > MAX_LOGO_BYTES:
        raise TooLarge(
            f"the logo is larger than {MAX_LOGO_BYTES} bytes (1 MiB); upload a smaller image"
        )
    if not content:
        raise Invalid("file: the upload is empty; send a PNG, JPEG or GIF image")
    # The upload's own content type is not trusted: the image's first bytes say what it is.
    content_type = logo_type(content)
    if content_type is None:
        raise Invalid("file: not a PNG, JPEG or GIF image (checked by its content, not its name)")
    return content_type


async def store_logo(session: AsyncSession, content: bytes) -> str:
    """A checked logo saved as a document; its id (for `BrandingSettings.logo_document_id`)."""
    content_type = check_logo(content)
    return await documents.save(
        session,
        content,
        kind="logo",
        filename=f"logo.{LOGO_EXTENSIONS[content_type]}",
        content_type=content_type,
    )


# --- the settings page's preview ----------------------------------------------------------------


def sample_job(zone: ZoneInfo) -> JobState:
    """A believable job for previews, made by the real rules: quoted, approved and scheduled for
    next Tuesday 09:00–11:00 in the company's zone, so a preview shows times and money exactly
    as a real message would."""
    client = ClientSnapshot(id=1042, name="Rivera Residence", email="rivera@example.com",
                            phone="+15555550123")  # fmt: skip
    office = Actor(username="sample", role=Role.office)
    today = datetime.now(zone).replace(hour=9, minute=0, second=0, microsecond=0)
    start = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    steps: list[ev._Event] = [
        ev.JobCreated(client_id=client.id, title="No heat upstairs", source="incoming_call"),
        ev.OwnerAssigned(owner="sample"),
        ev.LeadQualified(),
        ev.QuoteDrafted(lines=[
            ev.QuoteLine(description="Furnace igniter", quantity=Decimal(1),
                         unit_price=Decimal("184.00"), sku="IGN-1"),
            ev.QuoteLine(description="Labour", quantity=Decimal(2),
                         unit_price=Decimal("95.00"), sku="LAB"),
        ]),
        ev.QuoteSent(),
        ev.QuoteApproved(),
        ev.JobScheduled(technician="sample", window_start=start,
                        window_end=start + timedelta(hours=2)),
    ]  # fmt: skip
    state = lifecycle.new_job("k7m2q9rt", client)
    for step in steps:
        decision = lifecycle.apply(state, step, office, start - timedelta(days=3))
        assert isinstance(decision, lifecycle.Accepted), decision
        state = decision.state
    return state.model_copy(update={"number": 1042})


def sample_context(settings: CommunicationSettings, company: Company) -> dict[str, str]:
    """The merge fields of the sample job, as message_context fills them for a real message."""
    return message_context(
        sample_job(company.zone),
        settings,
        currency_symbol=company.currency_symbol,
        company_name=company.name,
        technician_name="Tess Turner",
        message="Your technician will call about 30 minutes before arriving.",
        portal_link="https://jobs.example.com/portal/sample",
    )
