"""Closeout and branding settings (DESIGN.md §4 "Closeout settings", §8): everyone reads, admins
write. The webhook secret is write-only: reads say whether one is set, never what it is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile
from pydantic import BaseModel, ValidationError

from api.deps import SessionDep, SettingsDep, require
from api.errors import BODY_ERRORS, Invalid
from api.settings import service
from api.text import NulFree
from core import settings_store
from core.settings_store import BRANDING, CLOSEOUT
from models.branding import BrandingSettings
from models.closeout import Channel, CloseoutFields, CloseoutSettings, ReceiptField
from models.lifecycle import USER_ROLES
from models.tables import User

router = APIRouter()
Reader = Annotated[User, Depends(require(*USER_ROLES, what="reading settings"))]
Admin = Annotated[User, Depends(require(*service.SETTINGS_WRITERS, what="changing settings"))]


class CloseoutView(BaseModel):
    """The closeout settings as they are read: the secret replaced by whether one is set."""

    channel: Channel
    receipt_fields: list[ReceiptField]
    portal_link_days: int
    webhook_url: str | None
    webhook_secret_set: bool


class CloseoutUpdate(CloseoutFields):
    """A PUT body: the whole document. Leave `webhook_secret` out to keep the stored one, send
    null to remove it. `webhook_secret_set` (as a GET returns it) is accepted and ignored."""

    webhook_secret_set: bool | None = None


def _view(settings: CloseoutSettings) -> CloseoutView:
    return CloseoutView(
        **settings.model_dump(exclude={"webhook_secret"}),
        webhook_secret_set=bool(settings.webhook_secret),
    )


def _invalid(error: ValidationError) -> Invalid:
    parts = []
    for e in error.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()))
        message = e.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return Invalid("; ".join(parts) or "the settings are not valid")


@router.get("/closeout", response_model=CloseoutView)
async def get_closeout(session: SessionDep, _: Reader) -> CloseoutView:
    return _view(await settings_store.load(session, CLOSEOUT, CloseoutSettings))


@router.put("/closeout", response_model=CloseoutView, responses=BODY_ERRORS)
async def put_closeout(
    body: Annotated[CloseoutUpdate, NulFree],
    session: SessionDep,
    admin: Admin,
    app_settings: SettingsDep,
) -> CloseoutView:
    """Replaces the whole document; jobs completed from now on use it. `webhook_url` must name a
    public internet host (unless the operator allows private networks)."""
    service.check_webhook_url(body.webhook_url, allow_private=app_settings.webhook_allow_private)
    data: dict[str, Any] = body.model_dump(exclude={"webhook_secret_set"})
    try:
        settings = await service.closeout_document(
            session, data, keep_secret="webhook_secret" not in body.model_fields_set
        )
    except ValidationError as error:
        raise _invalid(error) from None
    await settings_store.save(session, CLOSEOUT, settings, admin.username)
    return _view(settings)


@router.get("/branding", response_model=BrandingSettings)
async def get_branding(session: SessionDep, _: Reader) -> BrandingSettings:
    """`company_name` is the company's one name, kept with the communication settings."""
    return await service.branding_view(session)


@router.put("/branding", response_model=BrandingSettings, responses=BODY_ERRORS)
async def put_branding(
    body: Annotated[BrandingSettings, NulFree], session: SessionDep, admin: Admin
) -> BrandingSettings:
    """Replaces the whole document; documents rendered from now on use it. A `company_name`
    given is the company's one name: it is stored with the communication settings (their
    `company_name`), which messages, documents and pages all read; null or absent keeps it."""
    return await service.save_branding(session, body, admin.username)


@router.post(
    "/branding/logo",
    response_model=BrandingSettings,
    max_body_size=service.LOGO_BODY_BYTES,
    responses=BODY_ERRORS,
)
async def upload_logo(
    session: SessionDep, admin: Admin, file: Annotated[UploadFile, File()]
) -> BrandingSettings:
    """A PNG, JPEG or GIF of at most 1 MiB becomes the logo on documents rendered from now on."""
    content = await file.read(service.MAX_LOGO_BYTES + 1)
    document_id = await service.store_logo(session, content)
    branding = await settings_store.load(session, BRANDING, BrandingSettings)
    branding = branding.model_copy(update={"logo_document_id": document_id})
    await settings_store.save(session, BRANDING, branding, admin.username)
    return await service.branding_view(session)
