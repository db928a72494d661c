"""Settings documents (DESIGN.md §4 "Communication settings"): everyone reads, admins write."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from api.deps import SessionDep, require
from api.errors import BODY_ERRORS, ERROR_RESPONSES
from api.settings import service
from api.settings.closeout_routes import router as closeout_router
from api.text import NulFree
from core import settings_store
from core.settings_store import COMMUNICATIONS, QUOTES
from models.communications import CommunicationSettings
from models.lifecycle import USER_ROLES
from models.quoting import QuoteSettings
from models.tables import User

router = APIRouter(prefix="/api/v1/settings", tags=["settings"], responses=ERROR_RESPONSES)
Reader = Annotated[User, Depends(require(*USER_ROLES, what="reading settings"))]
Admin = Annotated[User, Depends(require(*service.SETTINGS_WRITERS, what="changing settings"))]


@router.get("/communications", response_model=CommunicationSettings)
async def get_communications(session: SessionDep, _: Reader) -> CommunicationSettings:
    return await settings_store.load(session, COMMUNICATIONS, CommunicationSettings)


@router.put("/communications", response_model=CommunicationSettings, responses=BODY_ERRORS)
async def put_communications(
    body: Annotated[CommunicationSettings, NulFree], session: SessionDep, admin: Admin
) -> CommunicationSettings:
    """Replaces the whole document; running jobs use it from their next wait on."""
    return await service.save_communications(session, body, admin.username)


@router.get("/quotes", response_model=QuoteSettings)
async def get_quotes(session: SessionDep, _: Reader) -> QuoteSettings:
    return await settings_store.load(session, QUOTES, QuoteSettings)


@router.put("/quotes", response_model=QuoteSettings, responses=BODY_ERRORS)
async def put_quotes(
    body: Annotated[QuoteSettings, NulFree], session: SessionDep, admin: Admin
) -> QuoteSettings:
    """Replaces the whole document. Quotes drafted from now on take the tax rate; quotes already
    drafted keep theirs. Links already sent keep the lifetime they were made with."""
    await settings_store.save(session, QUOTES, body, admin.username)
    return body


# Closeout and branding settings live in their own module; served under the same prefix.
router.include_router(closeout_router)
