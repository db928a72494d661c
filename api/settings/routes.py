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
from core.settings_store import COMMUNICATIONS
from models.communications import CommunicationSettings
from models.lifecycle import USER_ROLES
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


# Closeout and branding settings live in their own module; served under the same prefix.
router.include_router(closeout_router)
