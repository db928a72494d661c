"""`/clients` (search, a page of clients at a time) and `/clients/{id}` (the client's details, an
edit form, and the client's jobs).

The same services as `/api/v1/clients`: `search` and `read` narrow what a technician sees to the
clients of their jobs (without the office's notes), and an edit goes through `update` with PATCH
semantics (only the fields the person changed). Who may edit is the API's `ClientWriter` rule.

The form helpers here (reading the client fields of a form, pydantic's complaints as words at the
field) are shared with `/jobs/new`, which creates a client inline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil
from typing import Any, get_args
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.clients import service as clients
from api.clients.schemas import ClientCreate, ClientUpdate
from api.deps import ClientWriter, SessionDep
from api.errors import NotFound, NotPermitted
from api.jobs import service as jobs
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from models import lifecycle
from models.tables import Client, User

router = page_router()

PAGE_SIZE = 25
JOBS_SHOWN = 50
TIERS = {"standard": "Standard", "platinum": "Platinum", "gov": "Government"}
CLIENT_FIELDS = ("name", "email", "phone", "tier", "billing_email", "address", "notes")
CLIENT_LABELS = {
    "name": "Name",
    "email": "Email",
    "phone": "Phone",
    "tier": "Tier",
    "billing_email": "Billing email",
    "address": "Address",
    "notes": "Internal notes",
}
# Optional contact fields: left empty, they are not set (or, on an edit, cleared).
_CLEARED_WHEN_EMPTY = {"email", "phone", "billing_email"}
_REQUIRED_MESSAGES = {"name": "Enter the client's name", "title": "Enter a title for the job"}

# The API's rule for who may change clients (api/deps.py), not a second copy of it.
_client_writer_check = get_args(ClientWriter)[1].dependency


async def require_client_writer(user: User) -> None:
    """NotPermitted (the 403 page) for a role the API does not let change clients."""
    await _client_writer_check(user)


async def may_change_clients(user: User) -> bool:
    try:
        await require_client_writer(user)
    except NotPermitted:
        return False
    return True


# --- forms -----------------------------------------------------------------------------------


@dataclass
class Problems:
    """What is wrong with a form: field name -> the words shown at the field and in the summary
    (in the order of the form). Key "" is a problem with the form as a whole."""

    errors: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.errors)


def text_of(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def explain(error: ValidationError, labels: dict[str, str], problems: Problems) -> None:
    """Pydantic's complaints as GOV.UK-style words, one per field."""
    for item in error.errors():
        loc = item.get("loc") or ()
        name = str(loc[0]) if loc else ""
        label = labels.get(name, name.replace("_", " ").capitalize() or "This form")
        kind = item.get("type", "")
        context = item.get("ctx") or {}
        if kind in {"missing", "string_too_short"}:
            message = _REQUIRED_MESSAGES.get(name, f"Enter {label.lower()}")
        elif kind == "string_too_long":
            message = f"{label} must be {context.get('max_length')} characters or fewer"
        elif kind == "literal_error":
            message = f"Choose {label.lower()} from the list"
        else:
            detail = str(item.get("msg", "is not valid")).removeprefix("Value error, ")
            message = f"{label}: {detail}"
        problems.add(name, message)


def client_values(form: FormData) -> dict[str, str]:
    """The client fields as typed (kept for the form when it comes back)."""
    return {name: text_of(form, name) for name in CLIENT_FIELDS}


def _client_data(values: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in CLIENT_FIELDS:
        value = values.get(name, "")
        if name in _CLEARED_WHEN_EMPTY and not value.strip():
            data[name] = None
        else:
            data[name] = value
    return data


def new_client_from(values: dict[str, str], problems: Problems) -> ClientCreate | None:
    """The new client the form describes, as POST /api/v1/clients would take it."""
    data = _client_data(values)
    data["tier"] = data["tier"] or "standard"
    try:
        return ClientCreate.model_validate(data)
    except ValidationError as error:
        explain(error, CLIENT_LABELS, problems)
        return None


def client_form_values(client: Client) -> dict[str, str]:
    return {
        "name": client.name,
        "email": client.email or "",
        "phone": client.phone or "",
        "tier": client.tier,
        "billing_email": client.billing_email or "",
        "address": client.address,
        "notes": client.notes,
    }


ORIGINAL = "was_"  # the edit form's hidden copy of each value as the page showed it


def originals_of(form: FormData, client: Client) -> dict[str, str]:
    """The values the edit form was rendered with (the stored ones, for a form without them)."""
    stored = client_form_values(client)
    return {
        name: text_of(form, ORIGINAL + name) if ORIGINAL + name in form else stored[name]
        for name in CLIENT_FIELDS
    }


def changes_of(form: FormData, originals: dict[str, str]) -> dict[str, Any]:
    """PATCH semantics: only the fields the person changed from what their page showed, so an
    edit never writes back a field someone else changed meanwhile."""
    typed = _client_data({name: text_of(form, name) for name in CLIENT_FIELDS})
    shown = _client_data(originals)
    return {
        name: typed[name]
        for name in CLIENT_FIELDS
        if name in form and _normal(typed[name]) != _normal(shown[name])
    }


def _normal(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


# --- /clients --------------------------------------------------------------------------------


def _page_number(text: str | None) -> int:
    try:
        return min(max(int(text or "1"), 1), 100_000)
    except ValueError:
        return 1


def _query_text(text: str | None) -> str:
    return (text or "").replace("\x00", "").strip()[:200]


def _query_string(**params: object) -> str:
    return urlencode({k: v for k, v in params.items() if v not in (None, "", 1)})


@router.get("/clients")
async def client_list(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    q: str | None = None,
    tier: str | None = None,
    page: str | None = None,
) -> Response:
    text = _query_text(q)
    chosen_tier = tier if tier in TIERS else ""
    number = _page_number(page)
    rows, total = await clients.search(
        session, viewer.user, text or None, chosen_tier or None, number, PAGE_SIZE
    )
    pages = max(ceil(total / PAGE_SIZE), 1)
    return render(
        request,
        "clients.html",
        viewer,
        rows=rows,
        total=total,
        q=text,
        tier=chosen_tier,
        tiers=TIERS,
        page=number,
        pages=pages,
        first=(number - 1) * PAGE_SIZE + 1,
        last=(number - 1) * PAGE_SIZE + len(rows),
        previous_href=f"/clients?{_query_string(q=text, tier=chosen_tier, page=number - 1)}"
        if number > 1
        else None,
        next_href=f"/clients?{_query_string(q=text, tier=chosen_tier, page=number + 1)}"
        if number < pages
        else None,
        may_create_jobs=may_create_jobs(viewer.user),
    )


def may_create_jobs(user: User) -> bool:
    """The lifecycle's rule for `job_created` (office, sales, manager)."""
    return user.role in lifecycle.RULES["job_created"].roles


# --- /clients/{id} ---------------------------------------------------------------------------


def _client_id(text: str) -> int:
    if not text.isdigit() or len(text) > 10:
        raise NotFound(f"no client with id {text}")
    return int(text)


async def _client_page(
    request: Request,
    viewer: SignedIn,
    session: SessionDep,
    client: Client,
    *,
    values: dict[str, str] | None = None,
    originals: dict[str, str] | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    assert client.id is not None
    rows, total = await jobs.search(
        session, viewer.user, jobs.JobFilters(client_id=client.id), page=1, page_size=JOBS_SHOWN
    )
    may_edit = await may_change_clients(viewer.user)
    if values is None:
        values = client_form_values(client) if may_edit else {}
    if originals is None:
        originals = client_form_values(client) if may_edit else {}
    return render(
        request,
        "client.html",
        viewer,
        status=status,
        client=client,
        shown=clients.shown_to(viewer.user, client),
        sees_notes=not viewer.is_technician,
        may_edit=may_edit,
        may_create_jobs=may_create_jobs(viewer.user),
        values=values,
        originals=originals,
        original_prefix=ORIGINAL,
        errors=(problems or Problems()).errors,
        tiers=TIERS,
        jobs=rows,
        jobs_total=total,
    )


@router.get("/clients/{client_id}")
async def client_page(
    request: Request, client_id: str, viewer: Viewer, session: SessionDep
) -> Response:
    client = await clients.read(session, viewer.user, _client_id(client_id))
    return await _client_page(request, viewer, session, client)


@router.post("/clients/{client_id}")
async def edit_client(
    request: Request, client_id: str, viewer: Viewer, session: SessionDep
) -> Response:
    form = await viewer.form(request)
    await require_client_writer(viewer.user)
    client = await clients.read(session, viewer.user, _client_id(client_id))
    values = client_values(form)
    originals = originals_of(form, client)
    problems = Problems()
    changes = changes_of(form, originals)
    update: ClientUpdate | None = None
    try:
        update = ClientUpdate.model_validate(changes)
    except ValidationError as error:
        explain(error, CLIENT_LABELS, problems)
    if problems or update is None:
        return await _client_page(
            request, viewer, session, client, values=values, originals=originals,
            problems=problems, status=422,
        )  # fmt: skip
    if not changes:
        return see_other(f"/clients/{client.id}", flash="Nothing changed.")
    saved = await clients.update(session, client.id or 0, update)
    changed = ", ".join(CLIENT_LABELS[name].lower() for name in CLIENT_FIELDS if name in changes)
    return see_other(f"/clients/{saved.id}", flash=f"Saved {saved.name}: {changed} changed.")
