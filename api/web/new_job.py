"""`/jobs/new`: pick a client (or create one inline), then the job's `job_created` fields.

The same services as the JSON API: the client is created by `api.clients.service.create` with
POST /api/v1/clients' validation, the job by `api.jobs.service.create_job`. The form carries an
idempotency key made when it was rendered, so sending it twice (a double click, a reload of the
answer) creates one client and one job: the client's answer is kept under the key as the API
keeps it, and the job's slug is derived from the key as for an API create with that key.

A new client that looks like an existing one (same name, email or phone) is not created at
once: the form comes back saying which client it resembles, with a button to use that client
and one to create the new client anyway.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api import idempotency
from api.admission import Admitted
from api.clients import service as clients
from api.clients.schemas import ClientCreate
from api.deps import DatabaseDep, SessionDep, SettingsDep, TemporalDep
from api.errors import AppError, NotPermitted
from api.idempotency import Idempotency
from api.jobs import service as jobs
from api.web.clients_pages import (
    TIERS,
    Problems,
    client_values,
    explain,
    may_create_jobs,
    new_client_from,
    require_client_writer,
    text_of,
)
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from models import events as ev
from models import lifecycle
from models.tables import Client

router = page_router()

PATH = "/jobs/new"
SOURCES = {
    "incoming_call": "Incoming call",
    "incoming_email": "Incoming email",
    "outgoing_call": "Outgoing call",
    "outgoing_email": "Outgoing email",
}
PRIORITIES = {"standard": "Standard", "emergency": "Emergency"}
JOB_FIELDS = ("title", "description", "source", "priority", "site_address")
JOB_LABELS = {
    "title": "Title",
    "description": "Description",
    "source": "How the job came in",
    "priority": "Priority",
    "site_address": "Job site",
    "client_id": "Client",
}
REASON_WORDS = {"name": "name", "email": "email", "phone": "phone number"}
SEARCH_RESULTS = 10
_KEY = re.compile(r"^[!-~]{1,120}$")


def _require_job_creator(viewer: SignedIn) -> None:
    if not may_create_jobs(viewer.user):
        roles = ", ".join(sorted(r.value for r in lifecycle.RULES["job_created"].roles))
        raise NotPermitted(f"creating jobs is for: {roles}; you are {viewer.role}")


def _new_key() -> str:
    return f"web-{secrets.token_urlsafe(24)}"


def _job_values(form: FormData) -> dict[str, str]:
    return {name: text_of(form, name) for name in JOB_FIELDS}


def _duplicate_message(reasons: tuple[str, ...], client: Client) -> str:
    words = [REASON_WORDS[r] for r in reasons]
    what = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
    return f"A client with this {what} already exists: {client.name} ({client.client_number})"


async def _form(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    *,
    key: str,
    client: Client | None = None,
    values: dict[str, str] | None = None,
    problems: Problems | None = None,
    duplicates: list[clients.LikelyDuplicate] | None = None,
    q: str = "",
    status: int = 200,
) -> Response:
    values = {"source": "incoming_call", "priority": "standard", "tier": "standard"} | (
        values or {}
    )
    results: list[Client] = []
    if q and client is None:
        results, _ = await clients.search(session, viewer.user, q, None, 1, SEARCH_RESULTS)
    return render(
        request,
        "new_job.html",
        viewer,
        status=status,
        key=key,
        client=client,
        values=values,
        errors=(problems or Problems()).errors,
        duplicates=[(d.client, _duplicate_message(d.reasons, d.client)) for d in duplicates or []],
        q=q,
        results=results,
        searched=bool(q) and client is None,
        sources=SOURCES,
        priorities=PRIORITIES,
        tiers=TIERS,
    )


def _chosen_id(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) <= 10 else None


@router.get(PATH)
async def new_job_form(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    q: str | None = None,
    client_id: str | None = None,
) -> Response:
    _require_job_creator(viewer)
    client = None
    chosen = _chosen_id(client_id)
    if chosen is not None:
        client = await clients.read(session, viewer.user, chosen)
    values = {"site_address": client.address} if client else {}
    return await _form(
        request, viewer, session, key=_new_key(), client=client, values=values, q=_query(q)
    )


def _query(text: str | None) -> str:
    return (text or "").replace("\x00", "").strip()[:200]


def _digest(what: str, payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(["POST", PATH, what, payload], sort_keys=True, default=str).encode()
    ).hexdigest()


async def _existing_client(session: SessionDep, viewer: SignedIn, text: str) -> Client | None:
    chosen = _chosen_id(text)
    return None if chosen is None else await clients.find(session, chosen)


@router.post(PATH)
async def create_job(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    _: Admitted,
) -> Response:
    form = await viewer.form(request)
    _require_job_creator(viewer)
    try:
        return await _create(request, viewer, session, db, temporal, settings, form)
    except idempotency.KeyReused:
        # This form (its key) already created a job with other details: say so, and offer a
        # new form with what was typed, rather than the API's words about keys.
        problems = Problems()
        problems.add("", ALREADY_SENT)
        values = client_values(form) | _job_values(form)
        client = await _existing_client(session, viewer, text_of(form, "client_id"))
        return await _form(
            request, viewer, session, key=_new_key(), client=client, values=values,
            problems=problems, status=409,
        )  # fmt: skip


ALREADY_SENT = (
    "This form had already created a job with other details, so nothing was created this "
    "time. To create another job with the details below, press Create job again."
)


async def _create(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    db: DatabaseDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    form: FormData,
) -> Response:
    typed_key = text_of(form, "idempotency_key")
    key = typed_key if _KEY.match(typed_key) else _new_key()
    values = client_values(form) | _job_values(form)
    problems = Problems()

    # "Use this client" (a search result or a likely duplicate): the form again, with it chosen.
    if use := text_of(form, "use_client"):
        client = await _existing_client(session, viewer, use)
        if client is not None and not values["site_address"].strip():
            values["site_address"] = client.address
        return await _form(request, viewer, session, key=key, client=client, values=values)
    if text_of(form, "change_client"):
        return await _form(request, viewer, session, key=key, values=values)

    client = None
    new_client: ClientCreate | None = None
    if text_of(form, "client_id"):
        client = await _existing_client(session, viewer, text_of(form, "client_id"))
        if client is None:
            problems.add("", "That client no longer exists: choose another")
    else:
        await require_client_writer(viewer.user)
        new_client = new_client_from(values, problems)

    job_data = {
        "client_id": client.id if client else 1,  # a new client's id comes below
        **{name: values[name] for name in JOB_FIELDS},
    }
    try:
        ev.JobCreated.model_validate(job_data)
    except ValidationError as error:
        explain(error, JOB_LABELS, problems)
    if problems or (client is None and new_client is None):
        return await _form(
            request, viewer, session, key=key, client=client, values=values, problems=problems,
            status=422,
        )  # fmt: skip

    if client is None:
        assert new_client is not None
        client_idem = Idempotency(
            key=f"{key}/client",
            username=viewer.user.username,
            digest=_digest("client", new_client.model_dump(mode="json")),
        )
        client = await _created_earlier(session, client_idem)
        if client is None:
            if not text_of(form, "create_anyway"):
                duplicates = await clients.likely_duplicates(
                    session, new_client.name, new_client.email, new_client.phone
                )
                # Sent twice at once: the "duplicate" may be the client the other one created.
                client = await _created_earlier(session, client_idem) if duplicates else None
                if duplicates and client is None:
                    return await _form(
                        request, viewer, session, key=key, values=values, duplicates=duplicates,
                        status=409,
                    )  # fmt: skip
            if client is None:
                client = await _create_client(session, viewer, client_idem, new_client)

    assert client.id is not None
    job_data["client_id"] = client.id
    if not str(job_data["site_address"]).strip():
        job_data["site_address"] = client.address  # the work is at the client's address
    body = ev.JobCreated.model_validate(job_data)
    job_idem = Idempotency(
        key=key,
        username=viewer.user.username,
        digest=_digest("job", body.model_dump(mode="json")),
    )
    try:
        slug, _outcome = await jobs.create_job(
            session,
            db,
            temporal,
            settings.task_queue,
            viewer.user,
            body,
            job_idem,
            settings.api_event_timeout_s,
            settings.public_url.rstrip("/"),
        )
    except idempotency.KeyReused:
        raise
    except AppError as refused:
        # Refused, or Jobline too busy: the form again, nothing lost. The client (if this form
        # just created it) stays chosen, so sending again does not create another.
        problems.add("", _sentence(refused.message))
        return await _form(
            request, viewer, session, key=key, client=client, values=values, problems=problems,
            status=refused.status_code,
        )  # fmt: skip
    return see_other(f"/jobs/{slug}", flash=f"Job created for {client.name}: {body.title}.")


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


async def _created_earlier(session: SessionDep, idem: Idempotency) -> Client | None:
    """The client this form created before (it was sent twice, or sent again after a refusal)."""
    earlier = await idempotency.earlier_answer(session, idem)
    return None if earlier is None else await clients.find(session, int(earlier[1]["id"]))


async def _create_client(
    session: SessionDep, viewer: SignedIn, idem: Idempotency, data: ClientCreate
) -> Client:
    """The client, created once under this form's key, as POST /api/v1/clients does."""
    created = await clients.create(session, data)
    first = await idempotency.commit_with_answer(session, idem, 201, clients.public(created))
    if first is None:
        return created
    # The same form, sent twice at once: the other request created it first (and this one's
    # write was rolled back, so the person is read again).
    await session.refresh(viewer.user)
    client = await clients.find(session, int(json.loads(bytes(first.body))["id"]))
    assert client is not None
    return client
