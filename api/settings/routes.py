"""Settings documents (DESIGN.md §4 "Communication settings"): everyone reads, admins write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, require
from api.errors import BODY_ERRORS, ERROR_RESPONSES, Invalid
from api.settings.closeout_routes import router as closeout_router
from api.text import NulFree
from core import settings_store
from core.settings_store import COMMUNICATIONS
from models.communications import MERGE_FIELDS, CommunicationSettings, MessageTemplate, render
from models.lifecycle import USER_ROLES, Role
from models.tables import User

router = APIRouter(prefix="/api/v1/settings", tags=["settings"], responses=ERROR_RESPONSES)
Reader = Annotated[User, Depends(require(*USER_ROLES, what="reading settings"))]
Admin = Annotated[User, Depends(require(Role.admin, what="changing settings"))]

# What a template is tried with before it is saved: a job with every detail, and one with none
# (no quote, no number, no schedule yet), as messages are rendered for both.
_SAMPLE_JOBS: tuple[dict[str, str], ...] = (
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


def _check_templates_render(body: CommunicationSettings) -> None:
    """A template that parses but fails to render (`{{ client_name.nickname }}`, `{{ 1 / 0 }}`)
    would fail every message of its purpose, and hold the event that sends it: refused here."""
    for purpose, template in body.templates.items():
        for part in ("email_subject", "email_body", "sms"):
            alone = MessageTemplate(email_subject="-", email_body="-").model_copy(
                update={part: getattr(template, part)}
            )
            for context in _SAMPLE_JOBS:
                try:
                    render(alone, context)
                except Exception as error:  # whatever the template does wrong
                    raise Invalid(
                        f"templates.{purpose}.{part}: the template cannot be rendered: {error}"
                    ) from None


@router.get("/communications", response_model=CommunicationSettings)
async def get_communications(session: SessionDep, _: Reader) -> CommunicationSettings:
    return await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)


@router.put("/communications", response_model=CommunicationSettings, responses=BODY_ERRORS)
async def put_communications(
    body: Annotated[CommunicationSettings, NulFree], session: SessionDep, admin: Admin
) -> CommunicationSettings:
    """Replaces the whole document; running jobs use it from their next wait on."""
    _check_templates_render(body)
    await settings_store.save(session, COMMUNICATIONS, body, admin.username)
    return body


# Closeout and branding settings live in their own module; served under the same prefix.
router.include_router(closeout_router)
