"""Closeout and branding settings (DESIGN.md §4 "Closeout settings", §8): everyone reads, admins
write. The webhook secret is write-only: reads say whether one is set, never what it is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, UploadFile
from pydantic import BaseModel, ValidationError

from api.deps import SessionDep, SettingsDep, require
from api.errors import BODY_ERRORS, Invalid, TooLarge
from api.text import NulFree
from core import documents, settings_store
from core.settings_store import BRANDING, CLOSEOUT
from models.branding import LOGO_EXTENSIONS, BrandingSettings, logo_type
from models.closeout import Channel, CloseoutFields, CloseoutSettings, ReceiptField
from models.lifecycle import USER_ROLES, Role
from models.tables import User
from models.webhook_target import explain, url_refusal

router = APIRouter()
Reader = Annotated[User, Depends(require(*USER_ROLES, what="reading settings"))]
Admin = Annotated[User, Depends(require(Role.admin, what="changing settings"))]

MAX_LOGO_BYTES = 1024 * 1024
# The upload's whole body: the image, and room for the multipart form around it.
LOGO_BODY_BYTES = MAX_LOGO_BYTES + 16 * 1024


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
    url = body.webhook_url
    if url and not app_settings.webhook_allow_private and (reason := url_refusal(url)):
        raise Invalid(f"webhook_url: {explain(reason)}")
    data: dict[str, Any] = body.model_dump(exclude={"webhook_secret_set"})
    if "webhook_secret" not in body.model_fields_set:
        stored = await settings_store.load(session, CLOSEOUT, CloseoutSettings)
        data["webhook_secret"] = stored.webhook_secret
    try:
        settings = CloseoutSettings.model_validate(data)
    except ValidationError as error:
        raise _invalid(error) from None
    await settings_store.save(session, CLOSEOUT, settings, admin.username)
    return _view(settings)


@router.get("/branding", response_model=BrandingSettings)
async def get_branding(session: SessionDep, _: Reader) -> BrandingSettings:
    return await settings_store.load(session, BRANDING, BrandingSettings)


@router.put("/branding", response_model=BrandingSettings, responses=BODY_ERRORS)
async def put_branding(
    body: Annotated[BrandingSettings, NulFree], session: SessionDep, admin: Admin
) -> BrandingSettings:
    """Replaces the whole document; documents rendered from now on use it."""
    if body.logo_document_id is not None:
        document = await documents.load(session, body.logo_document_id)
        if document is None or document.kind != "logo":
            raise Invalid(
                "logo_document_id: no uploaded logo has this id; upload one with "
                "POST /api/v1/settings/branding/logo"
            )
    await settings_store.save(session, BRANDING, body, admin.username)
    return body


@router.post(
    "/branding/logo",
    response_model=BrandingSettings,
    max_body_size=LOGO_BODY_BYTES,
    responses=BODY_ERRORS,
)
async def upload_logo(
    session: SessionDep, admin: Admin, file: Annotated[UploadFile, File()]
) -> BrandingSettings:
    """A PNG, JPEG or GIF of at most 1 MiB becomes the logo on documents rendered from now on."""
    content = await file.read(MAX_LOGO_BYTES + 1)
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
    extension = LOGO_EXTENSIONS[content_type]
    document_id = await documents.save(
        session, content, kind="logo", filename=f"logo.{extension}", content_type=content_type
    )
    branding = await settings_store.load(session, BRANDING, BrandingSettings)
    branding = branding.model_copy(update={"logo_document_id": document_id})
    await settings_store.save(session, BRANDING, branding, admin.username)
    return branding
