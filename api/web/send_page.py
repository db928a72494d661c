"""The Send dialog, `/jobs/{slug}/send`: a message to the customer by email, and by SMS when
ticked, with a preview of both before anything is sent.

A plain page and form (post/redirect/get); it works without JavaScript and Back never breaks.
It calls exactly what `POST /api/v1/jobs/{slug}/send` calls: `api.jobs.send.preview` to render
(nothing sent), `api.jobs.send.as_event` and `api.jobs.service.send_event` to send, under an
`Idempotency` built from the form's hidden key (made when the form was first shown), so a double
submit sends once. The rules are the API's: who may send, to which jobs, in which stages.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.admission import Admitted
from api.deps import DatabaseDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError, EventRefused, NotFound, Unavailable
from api.idempotency import Idempotency, KeyReused
from api.jobs import send, service
from api.jobs.schemas import SendPreview, SendRequest
from api.outbox import service as outbox
from api.users.service import actor_of
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from core import settings_store
from models import events as ev
from models import lifecycle
from models.communications import CommunicationSettings
from models.lifecycle import Refusal
from models.reminders import outside_quiet_hours
from models.tables import OutboxMessage, User

router = page_router()

# The form's fields, in the order the page shows them (the error summary links to them).
FIELDS = ("to_email", "sms", "sms_phone", "message", "bcc_me")
_KEY = re.compile(r"^[!-~]{1,200}$")  # as api/idempotency.py takes a key
_SLUG = re.compile(r"^[a-z0-9-]{4,32}$")


@dataclass
class SendForm:
    """What the person typed (kept through every answer), and the key of this form."""

    to_email: str = ""
    sms: bool = False
    sms_phone: str = ""
    message: str = ""
    bcc_me: bool = False
    idempotency_key: str = field(default_factory=lambda: secrets.token_urlsafe(18))

    @classmethod
    def read(cls, form: FormData) -> SendForm:
        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        key = text("idempotency_key")
        return cls(
            to_email=text("to_email"),
            sms=bool(form.get("sms")),
            sms_phone=text("sms_phone"),
            message=text("message"),
            bcc_me=bool(form.get("bcc_me")),
            **({"idempotency_key": key} if _KEY.match(key) else {}),
        )

    def request(self, *, preview: bool) -> SendRequest:
        """As the JSON API takes it (raises pydantic's ValidationError)."""
        return SendRequest(
            message=self.message,
            to_email=self.to_email or None,
            bcc_me=self.bcc_me,
            sms=self.sms,
            sms_phone=self.sms_phone or None,
            preview=preview,
        )


@dataclass
class Problem:
    """One error: the field it is about (None for the whole form) and the words."""

    field: str | None
    text: str

    @property
    def anchor(self) -> str:
        return self.field or "message"


def _field_of(message: str) -> tuple[str | None, str]:
    """`"sms_phone: the client has no phone…"` → ("sms_phone", "The client has no phone…")."""
    name, sep, rest = message.partition(": ")
    if sep and name in FIELDS:
        return name, rest[:1].upper() + rest[1:]
    return None, message[:1].upper() + message[1:]


_FRIENDLY = {
    ("message", "string_too_short"): "Enter a message",
    ("message", "string_too_long"): "The message is too long: at most 2,000 characters",
}


def _validation_problems(errors: list[Any]) -> list[Problem]:
    problems: list[Problem] = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part != "body"]
        name = loc[0] if loc and loc[0] in FIELDS else None
        text = _FRIENDLY.get((name or "", error.get("type", "")))
        if text is None:
            text = str(error.get("msg", "Not valid")).removeprefix("Value error, ")
            text = text[:1].upper() + text[1:]
            if name == "to_email":
                text = f"Enter the email address like name@example.com ({text.lower()})"
            elif name == "sms_phone":
                text = f"Enter the mobile number with digits, like +1 555 0100 ({text.lower()})"
        problems.append(Problem(name, text))
    return problems


def _digest(path: str, body: SendRequest) -> str:
    """What this request asks, as api/idempotency.py digests a request: the same key with a
    different message is refused, never answered with the first one's result."""
    canonical = body.model_dump(mode="json", exclude={"preview"})
    return hashlib.sha256(
        json.dumps(["POST", path, canonical], sort_keys=True, default=str).encode()
    ).hexdigest()


def _check_may_send(state: lifecycle.JobState, user: User) -> None:
    """The rules' answer for this person and this job now: a role that may not send is a 403
    page, a stage that takes no message a 409 page (the payload is checked on sending)."""
    probe = ev.CustomerUpdateSent(message="(checking who may send)")
    decision = lifecycle.apply(state, probe, actor_of(user), datetime.now(UTC))
    if isinstance(decision, Refusal) and decision.code != "invalid_event":
        raise EventRefused(decision)


async def _comms(session: SessionDep) -> CommunicationSettings:
    return await settings_store.load(session, settings_store.COMMUNICATIONS, CommunicationSettings)


def _quiet_until(comms: CommunicationSettings) -> datetime | None:
    """The end of the quiet hours we are in now, or None outside them."""
    now = datetime.now(UTC)
    end = outside_quiet_hours(now, comms)
    return end if end != now else None


async def _page(
    request: Request,
    session: SessionDep,
    viewer: SignedIn,
    slug: str,
    form: SendForm,
    *,
    status: int = 200,
    problems: list[Problem] | None = None,
    preview: SendPreview | None = None,
) -> Response:
    row = await service.get_row(session, viewer.user, slug)
    state = lifecycle.JobState.model_validate(row.state)
    comms = await _comms(session)
    quiet = comms.quiet_hours
    problems = problems or []
    return render(
        request,
        "send.html",
        viewer,
        status=status,
        job=row,
        state=state,
        form=form,
        problems=problems,
        errors={p.field: p.text for p in problems if p.field},
        preview=preview,
        sms_enabled=comms.sms_enabled,
        quiet_hours=f"{quiet.start:%H:%M}–{quiet.end:%H:%M}" if quiet else None,
        quiet_until=_quiet_until(comms),
        my_email=viewer.user.email,
        default_bcc=comms.default_bcc,
    )


@router.get("/jobs/{slug}/send")
async def send_form(slug: str, request: Request, session: SessionDep, viewer: Viewer) -> Response:
    if not _SLUG.match(slug):
        raise NotFound(f"no job {slug!r}")
    row = await service.get_row(session, viewer.user, slug)  # another technician's: not found
    state = lifecycle.JobState.model_validate(row.state)
    _check_may_send(state, viewer.user)
    form = SendForm(to_email=state.client.email or "", sms_phone=state.client.phone or "")
    return await _page(request, session, viewer, slug, form)


def _queued(messages: list[OutboxMessage]) -> str:
    parts = []
    for message in messages:
        if message.channel == "email":
            copies = f" (Bcc {', '.join(message.bcc)})" if message.bcc else ""
            parts.append(f"email to {message.to}{copies}")
        else:
            parts.append(f"SMS to {message.to}")
    return "Queued: " + (", ".join(parts) if parts else "the message") + "."


@router.post("/jobs/{slug}/send")
async def send_post(
    slug: str,
    request: Request,
    session: SessionDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    viewer: Viewer,
    admitted: Admitted,
) -> Response:
    if not _SLUG.match(slug):
        raise NotFound(f"no job {slug!r}")
    form = SendForm.read(await viewer.form(request))
    wants_preview = (await request.form()).get("action") == "preview"
    user = viewer.user

    async def again(status: int, problems: list[Problem], **extra: Any) -> Response:
        return await _page(
            request, session, viewer, slug, form, status=status, problems=problems, **extra
        )

    try:
        body = form.request(preview=wants_preview)
    except ValidationError as invalid:
        return await again(422, _validation_problems(invalid.errors()))
    try:
        if wants_preview:
            shown = await send.preview(session, user, slug, body)
            return await again(200, [], preview=shown)
        event = await send.as_event(session, body)
        idem = Idempotency(
            key=form.idempotency_key, username=user.username, digest=_digest(request.url.path, body)
        )
        outcome = await service.send_event(
            session, db, temporal, user, slug, event, idem, settings.api_event_timeout_s
        )
    except RequestValidationError as invalid:
        return await again(422, _validation_problems(list(invalid.errors())))
    except KeyReused:
        # Sent once already with other words (Back, edit, Send): nothing more went. A new key
        # lets this message go as a new one, if the person sends it again.
        form.idempotency_key = SendForm().idempotency_key
        said = (
            "This form was already sent once, with different details; nothing more was sent. "
            "Check the job's messages, then press Send again to send this as a new message."
        )
        return await again(409, [Problem(None, said)])
    except Unavailable as busy:
        # Not known to be sent: the same key again sends it at most once.
        said = f"Not sent yet: {busy.message}. Press Send again: it is sent only once."
        return await again(503, [Problem(None, said)])
    except NotFound:
        raise
    except AppError as refused:  # refused by the rules (403, 409, 422) or the settings
        where, text = _field_of(refused.message)
        if not wants_preview:
            # A refused send used this key up: a new one for the corrected form.
            form.idempotency_key = SendForm().idempotency_key
        return await again(refused.status_code, [Problem(where, text)])
    if outcome is None:  # a retry: the job has finished since, and took this send then
        messages = await service.messages_of_request(session, slug, idem)
    else:
        messages = await outbox.by_ids(session, outcome.message_ids)
    return see_other(f"/jobs/{slug}", flash=_queued(messages))
