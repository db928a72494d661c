"""The job page's Result section and its form (issue 10 §6; DESIGN.md §6 "Job resulting").

After a visit the salesperson says how it went: Sale or No Sale, with the fields the admin
configured for that type. The section shows the current result (or that there is none yet, and
whether it is overdue), the form, and every revision newest first: a resubmission becomes the
current result and the earlier ones stay, each with the fields as they were submitted and its PDF.

The form posts to `POST /jobs/{slug}/result`, which reads it into the API's `ResultBody` and goes
through the same service (api/resulting/service.submit), with an idempotency key made when the
form was shown, so a double submit records one revision. Both types' field sets are in the form
(names `sale-<key>` and `no_sale-<key>`); only the chosen type's are read, so the form works
without JavaScript (static/result.js only hides the set not chosen). A refusal shows the section
again on its own page, with the problems at their fields and everything typed kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from activities.result_document import field_value
from api.admission import Admitted
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import Invalid, NotPermitted, Unavailable
from api.idempotency import Idempotency
from api.jobs import service as jobs
from api.resulting import service as resulting
from api.resulting import settings as resulting_settings
from api.resulting.service import ResultBody, ResultingOff
from api.users.service import people
from api.web.event_forms import person_name
from api.web.pages import SignedIn, Viewer, page_router, render, see_other
from core.company import Company
from models.lifecycle import Role
from models.resulting import RESULT_TYPES, TYPE_LABELS, ResultField, ResultingSettings
from models.tables import JobResult

router = page_router()
_KEY = re.compile(r"^[!-~]{1,200}$")

# How each configured field type is typed into the form.
INPUT_KINDS = {
    "dropdown": "select",
    "text": "textarea",
    "number": "number",
    "currency": "money",
    "date": "date",
    "checkbox": "checkbox",
}


def input_name(result_type: str, key: str) -> str:
    """A field's form name: its type first, so the Sale and No Sale sets never share a name."""
    return f"{result_type}-{key}"


@dataclass
class FormField:
    name: str  # the form's name, `sale-<key>`
    key: str
    label: str
    kind: str  # one of INPUT_KINDS' values
    required: bool
    options: list[str]
    value: Any  # a string as typed, or a bool for a checkbox
    error: str = ""


@dataclass
class FieldSet:
    type: str
    label: str
    fields: list[FormField]


@dataclass
class Revision:
    number: int
    type_label: str
    who: str
    when: str
    amount: str
    lines: list[tuple[str, str]]  # (label, value as a person reads it), in the form's order
    document_url: str  # empty while its PDF is still being made
    current: bool


@dataclass
class ResultSection:
    """Everything the `_job_result.html` partial shows."""

    slug: str
    enabled: bool
    can_configure: bool
    current: Revision | None
    revisions: list[Revision]  # newest first
    unresulted: bool
    due: str  # when a result became (or becomes) due, in the company's zone
    chosen: str  # the type ticked in the form ('' when none yet)
    sets: list[FieldSet]
    key: str  # the form's idempotency key
    summary: list[tuple[str, str]] = field(default_factory=list)  # (field name or '', message)


# --- reading what the job has ----------------------------------------------------------------


def _revision(
    row: JobResult, company: Company, names: dict[str, str], slug: str, current: bool
) -> Revision:
    view = resulting.revision_view(row)
    types = {f["key"]: f.get("type") for f in row.form}
    order = [f["key"] for f in row.form] + [k for k in view.fields if k not in types]
    lines = [
        (view.labels.get(k, k), field_value(view.fields[k], types.get(k), company))
        for k in order
        if k in view.fields
    ]
    return Revision(
        number=view.revision,
        type_label=view.type_label,
        who=names.get(view.submitted_by, view.submitted_by),
        when=company.when(view.submitted_at),
        amount=company.money(view.amount) if view.amount is not None else "",
        lines=lines,
        document_url=f"/jobs/{slug}/documents/{view.document_id}" if view.document_id else "",
        current=current,
    )


def _as_typed(value: Any, kind: str) -> Any:
    """A kept value as the form shows it: a bool for a checkbox, a string otherwise."""
    if kind == "checkbox":
        return value is True
    return "" if value is None else str(value)


def _field_sets(
    settings: ResultingSettings, values: dict[str, Any], errors: dict[str, str]
) -> list[FieldSet]:
    sets = []
    for result_type in RESULT_TYPES:
        configured: list[ResultField] = settings.types.of(result_type).fields
        shown = []
        for f in configured:
            name = input_name(result_type, f.key)
            kind = INPUT_KINDS[f.type]
            shown.append(
                FormField(name, f.key, f.label, kind, f.required, list(f.options),
                          _as_typed(values.get(name), kind), errors.get(name, ""))
            )  # fmt: skip
        sets.append(FieldSet(result_type, TYPE_LABELS[result_type], shown))
    return sets


def _values_of(rows: list[JobResult]) -> tuple[str, dict[str, Any]]:
    """The form's starting point: the current result, so a resubmission edits it."""
    if not rows:
        return "", {}
    last = rows[-1]
    return last.type, {input_name(last.type, k): v for k, v in last.fields.items()}


async def section(
    session: AsyncSession,
    viewer: SignedIn,
    slug: str,
    *,
    chosen: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    summary: list[tuple[str, str]] | None = None,
) -> ResultSection:
    """The Result section of job `slug` for this person (404 if they may not see the job). With
    `values`, the form shows what was typed (a refusal); otherwise the current result's."""
    company = viewer.company
    row = await jobs.get_row(session, viewer.user, slug)
    rows = await resulting.revisions(session, slug)
    settings = await resulting_settings.load(session)
    names = {u.username: person_name(u) for u in await people(session)}
    history = [
        _revision(r, company, names, slug, current=i == len(rows) - 1) for i, r in enumerate(rows)
    ]
    if values is None:
        chosen, values = _values_of(rows)
    return ResultSection(
        slug=slug,
        enabled=settings.enabled,
        can_configure=viewer.role == Role.admin,
        current=history[-1] if history else None,
        revisions=list(reversed(history)),
        unresulted=row.unresulted and not rows,
        due=company.day(row.resulting_due_at) if row.resulting_due_at and not rows else "",
        chosen=chosen or "",
        sets=_field_sets(settings, values, errors or {}),
        key=secrets.token_urlsafe(18),
        summary=summary or [],
    )


# --- reading the form back ---------------------------------------------------------------------


def _plain_number(text: str, symbol: str) -> str:
    """An amount as people type it ("$12,450") as the checks read it ("12450")."""
    return text.replace(symbol, "").replace(",", "").replace(" ", "")


def _submitted_fields(
    settings: ResultingSettings, chosen: str, form: FormData, symbol: str
) -> dict[str, Any]:
    """The chosen type's values as the API takes them: a checkbox is true when ticked and false
    when not; other values stay strings (the checks read numbers, money and dates from text);
    an optional field left empty is left out."""
    fields: dict[str, Any] = {}
    for f in settings.types.of(chosen).fields:
        name = input_name(chosen, f.key)
        if f.type == "checkbox":
            fields[f.key] = form.get(name) == "on"
            continue
        text = str(form.get(name) or "").strip()
        if f.type == "currency":  # a number's comma may be a decimal one: it is left for the checks
            text = _plain_number(text, symbol)
        if text or f.required:
            fields[f.key] = text
    return fields


def _typed(settings: ResultingSettings, form: FormData) -> dict[str, Any]:
    """Everything typed into both sets, to show again after a refusal."""
    kept: dict[str, Any] = {}
    for result_type in RESULT_TYPES:
        for f in settings.types.of(result_type).fields:
            name = input_name(result_type, f.key)
            kept[name] = form.get(name) == "on" if f.type == "checkbox" else str(
                form.get(name) or "")  # fmt: skip
    return kept


def _place(problems: list[str], chosen: str, settings: ResultingSettings) -> dict[str, str]:
    """Each problem at its field (the checks name a field as `Label (key)`), in its label's
    words; a problem that names no field is left for the top of the page."""
    placed: dict[str, str] = {}
    for f in settings.types.of(chosen).fields:
        for problem in problems:
            if f"({f.key})" in problem and input_name(chosen, f.key) not in placed:
                # People know the field by its label; the key is for the API's readers.
                placed[input_name(chosen, f.key)] = problem.replace(f" ({f.key})", "")
    return placed


def _keys(settings: ResultingSettings, chosen: str) -> list[str]:
    return [f.key for f in settings.types.of(chosen).fields]


def _digest(path: str, body: ResultBody) -> str:
    text = json.dumps(["POST", path, body.model_dump(mode="json")], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


async def _again(
    request: Request,
    viewer: SignedIn,
    session: AsyncSession,
    slug: str,
    *,
    status: int,
    chosen: str,
    values: dict[str, Any],
    errors: dict[str, str],
    general: list[str],
) -> HTMLResponse:
    """The section again on its own page, after a refusal: the words at the top (linked to their
    fields), at each field, and everything typed kept."""
    summary = [(name, message) for name, message in errors.items()]
    summary += [("", message) for message in general if message not in errors.values()]
    shown = await section(session, viewer, slug, chosen=chosen, values=values, errors=errors,
                          summary=summary)  # fmt: skip
    return render(
        request,
        "job_result.html",
        viewer,
        status=status,
        job=await jobs.get_row(session, viewer.user, slug),
        result=shown,
        here=f"/jobs/{slug}",
    )


@router.post("/jobs/{slug}/result", response_class=HTMLResponse)
async def submit_result_form(
    request: Request,
    slug: str,
    viewer: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    admitted: Admitted,
) -> Response:
    back = f"/jobs/{slug}#result"
    form = await viewer.form(request, back=back)
    await jobs.get_row(session, viewer.user, slug)  # may this person see the job? 404 if not
    config = await resulting_settings.load(session)
    chosen = str(form.get("type") or "")
    values = _typed(config, form)

    async def again(status: int, general: list[str], errors: dict[str, str] | None = None):
        return await _again(request, viewer, session, slug, status=status, chosen=chosen,
                            values=values, errors=errors or {}, general=general)  # fmt: skip

    if chosen not in RESULT_TYPES:
        return await again(422, ["Choose Sale or No Sale."], {"type": "Choose Sale or No Sale."})
    body = ResultBody(
        type=chosen, fields=_submitted_fields(config, chosen, form, viewer.company.currency_symbol)
    )  # type: ignore[arg-type]
    key = str(form.get("idempotency_key") or "")
    idem = Idempotency(
        key=key if _KEY.match(key) else None,
        username=viewer.user.username,
        digest=_digest(request.url.path, body),
    )
    try:
        revision = await resulting.submit(
            session, temporal, settings.task_queue, viewer.user, slug, body, idem,
            settings.api_event_timeout_s,
        )  # fmt: skip
    except Invalid as invalid:
        problems = [str(p) for p in invalid.extra.get("problems") or [invalid.message]]
        placed = _place(problems, chosen, config)
        general = [p for p in problems if not any(f"({k})" in p for k in _keys(config, chosen))]
        return await again(422, general, placed)
    except (ResultingOff, NotPermitted, Unavailable) as refused:
        return await again(refused.status_code, [f"Not recorded: {refused.message}."])
    words = TYPE_LABELS[revision.type]
    replaced = f", replacing revision {revision.revision - 1}" if revision.revision > 1 else ""
    return see_other(
        back,
        flash=f"Resulted as {words} (revision {revision.revision}{replaced}); the result email "
        "and its PDF follow.",
    )
