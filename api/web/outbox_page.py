"""The outbox, `/outbox`: every message Jobline queued or sent (the sandbox's captured ones too),
filtered by a GET form, and one message whole at `/outbox/{id}`: headers, body as text,
attachments, the job, and what a person does about a message in doubt (resend, mark sent).

The same service and the same people as `GET /api/v1/outbox` and its actions (office, manager,
admin); a message body is only ever shown as text, never as HTML.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Path, Request
from fastapi.responses import Response

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.documents.routes import document_response
from api.errors import Conflict, NotFound, NotPermitted
from api.outbox import service as outbox
from api.outbox.metrics import ACTIONS
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from core import documents
from models.outbox import ACTIONABLE, PURPOSES, STATUSES
from models.tables import OutboxMessage

router = page_router()

PAGE_SIZE = 50
CHANNELS = {"email": "Email", "sms": "SMS"}
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]
_SLUG = re.compile(r"^[a-z0-9-]{1,32}$")
_DOCUMENT_ID = re.compile(r"^[0-9a-f]{32}$")
# A status's tag: a word always, and one of the stylesheet's few colours.
TAG_CLASS = {
    "queued": "queued",
    "sending": "queued",
    "sent": "sent",
    "captured": "info",
    "failed": "failed",
    "unknown": "unknown",
    "resent": "quiet",
}
STATUS_WORDS = {
    "queued": "Queued",
    "sending": "Sending",
    "sent": "Sent",
    "captured": "Captured (sandbox)",
    "failed": "Failed",
    "unknown": "In doubt",
    "resent": "Resent",
}


def purpose_label(purpose: str) -> str:
    return purpose.replace("_", " ").capitalize()


def _check_reader(viewer: SignedIn) -> None:
    """The API's rule (api/outbox/routes.py): office, manager and admin read the outbox."""
    allowed = sorted(role.value for role in outbox.KEEPERS)
    if viewer.role not in allowed:
        raise NotPermitted(f"The outbox is for: {', '.join(allowed)}; you are {viewer.role}.")


def _summary(message: OutboxMessage) -> str:
    """The subject, or for an SMS the start of its text."""
    if message.subject:
        return message.subject
    text = " ".join(message.body.split())
    return text if len(text) <= 70 else text[:69] + "…"


@router.get("/outbox")
async def outbox_list(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    channel: str = "",
    purpose: str = "",
    status: str = "",
    job: str = "",
    q: str = "",
    page: str = "1",
    page_size: str = "",
) -> Response:
    _check_reader(viewer)
    # A filter the form never offers is no filter (a hand-typed URL gets the whole list).
    channel = channel if channel in CHANNELS else ""
    purpose = purpose if purpose in PURPOSES else ""
    status = status if status in STATUSES else ""
    job = job.strip().lower()
    job_slug = job if _SLUG.match(job) else ""
    q = q.strip()[:200].replace("\x00", "")
    number = int(page) if page.isdigit() and 0 < int(page) <= 100_000 else 1
    # As many to a page as the API allows (1-200); a link may ask for fewer or more.
    size = int(page_size) if page_size.isdigit() and 0 < int(page_size) <= 200 else PAGE_SIZE
    rows, total = await outbox.search(
        session,
        job_slug=job_slug or None,
        channel=channel or None,
        purpose=purpose or None,
        status=status or None,
        q=q or None,
        page=number,
        page_size=size,
    )
    filters = {"channel": channel, "purpose": purpose, "status": status, "job": job, "q": q}
    kept = {k: v for k, v in filters.items() if v}
    sized = {"page_size": size} if size != PAGE_SIZE else {}

    def page_link(n: int) -> str:
        return "/outbox?" + urlencode({**kept, **sized, "page": n})

    last = max(1, -(-total // size))
    return render(
        request,
        "outbox.html",
        viewer,
        rows=rows,
        total=total,
        page=number,
        first_shown=(number - 1) * size + 1,
        last_shown=(number - 1) * size + len(rows),
        previous_link=page_link(number - 1) if number > 1 else None,
        next_link=page_link(number + 1) if number < last else None,
        filters=filters,
        filtered=bool(kept),
        channels=CHANNELS,
        purposes=[(p, purpose_label(p)) for p in PURPOSES],
        statuses=[(s, STATUS_WORDS[s]) for s in STATUSES],
        tag_class=TAG_CLASS,
        status_words=STATUS_WORDS,
        purpose_label=purpose_label,
        summary=_summary,
    )


async def _message_page(
    request: Request,
    session: SessionDep,
    viewer: SignedIn,
    message: OutboxMessage,
    *,
    status: int = 200,
    problem: str | None = None,
) -> Response:
    resend = await outbox.resend_of(session, message) if message.status == "resent" else None
    return render(
        request,
        "outbox_message.html",
        viewer,
        status=status,
        message=message,
        resend=resend,
        actionable=message.status in ACTIONABLE,
        problem=problem,
        tag_class=TAG_CLASS,
        status_words=STATUS_WORDS,
        purpose_label=purpose_label,
        summary=_summary,
    )


@router.get("/outbox/{message_id}")
async def outbox_message(
    message_id: MessageId, request: Request, session: SessionDep, viewer: Viewer
) -> Response:
    _check_reader(viewer)
    message = await outbox.get(session, message_id)
    return await _message_page(request, session, viewer, message)


@router.get("/outbox/{message_id}/attachments/{document_id}")
async def outbox_attachment(
    message_id: MessageId, document_id: str, session: SessionDep, viewer: Viewer
) -> Response:
    """An attachment of this message, from the document store (as GET /api/v1/documents/{id}
    answers it), for a person who may read the outbox."""
    _check_reader(viewer)
    message = await outbox.get(session, message_id)
    missing = NotFound(f"message {message_id} has no attachment {document_id!r}")
    attached = {str(a.get("document_id")) for a in message.attachments or []}
    if not _DOCUMENT_ID.match(document_id) or document_id not in attached:
        raise missing
    row = await documents.load(session, document_id)
    if row is None:
        raise missing
    return document_response(row)


@router.post("/outbox/{message_id}/resend")
async def outbox_resend(
    message_id: MessageId,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    viewer: Viewer,
) -> Response:
    _check_reader(viewer)
    await viewer.form(request, back=f"/outbox/{message_id}")
    try:
        _, copy = await outbox.resend(
            session, temporal, settings.task_queue, message_id, viewer.user
        )
    except Conflict as refused:  # resent already (a double submit sends once), or not in doubt
        message = await outbox.get(session, message_id)
        return await _message_page(
            request, session, viewer, message, status=409, problem=refused.message
        )
    ACTIONS.labels("resend").inc()
    return see_other(
        f"/outbox/{copy.id}",
        flash=f"Queued: message {message_id} resent as message {copy.id} to {copy.to}.",
    )


@router.post("/outbox/{message_id}/mark-sent")
async def outbox_mark_sent(
    message_id: MessageId, request: Request, session: SessionDep, viewer: Viewer
) -> Response:
    _check_reader(viewer)
    await viewer.form(request, back=f"/outbox/{message_id}")
    try:
        await outbox.mark_sent(session, message_id, viewer.user)
    except Conflict as refused:
        message = await outbox.get(session, message_id)
        return await _message_page(
            request, session, viewer, message, status=409, problem=refused.message
        )
    ACTIONS.labels("mark_sent").inc()
    return see_other(
        f"/outbox/{message_id}", flash=f"Message {message_id} marked sent: the customer has it."
    )
