"""`/settings/resulting` (issue 10 §1, §3 and §6; the SOP's Steps 2 and 3): the admin's editor
for job resulting, and the dry run that tries it.

Step 2 of the SOP is the form: resulting on or off, the days after which a job nobody resulted is
flagged, and for each type (Sale, No Sale) its pattern, its recipients and its fields, edited
with the field-row editor the closeout page uses (api/web/field_rows.py). Step 3 is the dry-run
button: the values in the form, unsaved, are tried on a sample job by
`api.resulting.dry_run.dry_run` and its checks are shown above the form, which keeps what was
typed; Save then keeps them. Try before save is the point: the SOP says not to train anyone on an
untested configuration.

Everyone who may read settings reads this page; only admins change it (the SOP's open question,
answered in models.resulting's callers). The rules and their words are the model's
(`ResultingSettings`): a refused save or dry run comes back 422 with each problem at its place
in the form and in the summary, nothing saved; a saved one redirects (post/redirect/get).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from starlette.datastructures import FormData

from api.deps import DatabaseDep, SessionDep
from api.errors import AppError
from api.resulting import settings as resulting_settings
from api.resulting.dry_run import DryRun, dry_run
from api.settings import service
from api.web.field_rows import TYPE_NAMES, FieldRows, Row, form_text
from api.web.pages import SignedIn, Viewer, page_router, see_other
from api.web.settings_pages import Problems, problem_text, settings_page
from models.closeout import FIELD_TYPES
from models.resulting import PATTERNS, RESULT_TYPES, TYPE_LABELS, ResultingSettings

router = page_router()

PATH = "/settings/resulting"
SAVED = "Saved. Results submitted from now on use these settings; earlier results keep theirs."
# Each type's field editor: rows named sale-rf-0-key, no_sale-rf-2-options...
EDITORS: dict[str, FieldRows] = {
    name: FieldRows(prefix=f"{name}-rf", count_name=f"{name}-rows", blank_rows=1)
    for name in RESULT_TYPES
}
# An address list as people type one: a line each, or separated by commas (or semicolons).
_SEPARATORS = re.compile(r"[\n,;]+")

Rows = dict[str, list[Row]]


# --- the form and the settings ------------------------------------------------------------------


def _values(settings: ResultingSettings) -> tuple[dict[str, str], Rows]:
    values = {
        "enabled": "on" if settings.enabled else "",
        "unresulted_after_days": str(settings.unresulted_after_days),
    }
    rows: Rows = {}
    for name in RESULT_TYPES:
        of_type = settings.types.of(name)
        values[f"{name}-pattern"] = of_type.pattern
        values[f"{name}-recipients"] = "\n".join(of_type.recipients)
        rows[name] = EDITORS[name].from_settings(of_type.fields)
    return values, rows


def _form_values(form: FormData) -> tuple[dict[str, str], Rows]:
    names = ["enabled", "unresulted_after_days"]
    names += [f"{name}-{part}" for name in RESULT_TYPES for part in ("pattern", "recipients")]
    values = {name: form_text(form, name) for name in names}
    return values, {name: EDITORS[name].from_form(form) for name in RESULT_TYPES}


def _recipients(typed: str) -> list[str]:
    return [address.strip() for address in _SEPARATORS.split(typed) if address.strip()]


def _document(values: dict[str, str], kept: Rows) -> dict[str, Any]:
    return {
        "enabled": bool(values["enabled"]),
        "unresulted_after_days": values["unresulted_after_days"].strip(),
        "types": {
            name: {
                "pattern": values[f"{name}-pattern"],
                "recipients": _recipients(values[f"{name}-recipients"]),
                "fields": EDITORS[name].documents(kept[name]),
            }
            for name in RESULT_TYPES
        },
    }


# --- where a problem is, and its words ----------------------------------------------------------


def _problems(error: ValidationError, values: dict[str, str], kept: Rows) -> Problems:
    """Each problem at the form field it is about (the first problem a field has wins)."""
    found: Problems = {}
    for detail in error.errors():
        field, message = _place(detail, values, kept)
        found.setdefault(field, message)
    return found


def _place(detail: ErrorDetails, values: dict[str, str], kept: Rows) -> tuple[str, str]:
    loc = tuple(detail.get("loc", ()))
    kind = detail.get("type", "")
    message = problem_text(str(detail.get("msg", "not valid")).removeprefix("Value error, "))
    if not loc:
        # The document's own check: no recipients while enabled names its type.
        for named in RESULT_TYPES:
            if f"({named})" in message:
                return f"{named}-recipients", message
        return "enabled", message
    if loc[0] == "unresulted_after_days":
        return "unresulted_after_days", "Give a whole number of days, from 1 to 365"
    if loc[0] != "types" or len(loc) < 3 or loc[1] not in RESULT_TYPES:
        return str(loc[0]), message
    name, part, rest = str(loc[1]), str(loc[2]), loc[3:]
    label = TYPE_LABELS[name]
    if part == "recipients":
        typed = _recipients(values[f"{name}-recipients"])
        if rest and isinstance(rest[0], int) and rest[0] < len(typed):
            said = message[:1].lower() + message[1:]  # "not an email address (like ...)"
            return f"{name}-recipients", f"{label}: {typed[rest[0]]!r} is {said}"
        if kind == "too_long":
            return f"{name}-recipients", f"{label}: at most {_limit(detail)} recipients"
        return f"{name}-recipients", f"{label}: {message}"
    if part == "fields":
        if not rest and kind == "too_short":
            return f"{name}-fields", (
                f"{label} has no fields: give it at least one (every result type needs one)"
            )
        if not rest and kind == "too_long":
            return f"{name}-fields", f"{label}: at most {_limit(detail)} fields"
        at = EDITORS[name].problem_at(kept[name], rest, message) or f"{name}-fields"
        if kind == "string_too_short" and at.endswith("-label"):
            message = "Give this field a label: it is what people read when they result a job"
        elif kind == "string_too_short" and at.endswith("-key"):
            message = "Give this field a key (like sale_amount)"
        return at, f"{label}: {message}"
    return f"{name}-{part}", f"{label}: {message}"


def _limit(detail: ErrorDetails) -> str:
    context = detail.get("ctx") or {}
    return str(context.get("max_length", "?"))


# --- the page -----------------------------------------------------------------------------------


def _resulting_page(
    request: Request,
    viewer: SignedIn,
    values: dict[str, str],
    rows: Rows,
    *,
    problems: Problems | None = None,
    status: int = 200,
    tried: DryRun | dict[str, Any] | None = None,
) -> Response:
    return settings_page(
        request,
        "settings_resulting.html",
        viewer,
        problems=problems,
        status=status,
        values=values,
        result_types=[
            {
                "name": name,
                "label": TYPE_LABELS[name],
                "editor": EDITORS[name],
                "rows": EDITORS[name].for_template(rows[name]),
            }
            for name in RESULT_TYPES
        ],
        patterns=list(PATTERNS.items()),
        types=[(t, TYPE_NAMES.get(t, t)) for t in FIELD_TYPES],
        tried=tried,
    )


@router.get(PATH)
async def resulting_settings_page(
    request: Request, viewer: Viewer, session: SessionDep
) -> Response:
    values, rows = _values(await resulting_settings.load(session))
    return _resulting_page(request, viewer, values, rows)


@router.post(PATH)
async def resulting_settings_save(
    request: Request,
    viewer: Viewer,
    session: SessionDep,
    db: DatabaseDep,
) -> Response:
    form = await viewer.form(request)
    service.check_may_change(viewer.user)
    values, rows = _form_values(form)
    action = form_text(form, "action")

    for name in RESULT_TYPES:
        if action == f"add-{name}":
            # One more blank row for this type; what was typed is kept, nothing saved.
            rows[name] = EDITORS[name].with_blank_row(rows[name])
            return _resulting_page(request, viewer, values, rows)

    kept: Rows = {name: FieldRows.kept(rows[name]) for name in RESULT_TYPES}
    try:
        settings = ResultingSettings.model_validate(_document(values, kept))
    except ValidationError as error:
        problems = _problems(error, values, kept)
        return _resulting_page(request, viewer, values, rows, problems=problems, status=422)

    if action == "dry-run":
        # The form's values as they are, unsaved: the page shows what the dry run found and
        # keeps the form, so the admin can change it, try again, or save.
        tried = await _dry_run(session, db, viewer, settings)
        return _resulting_page(request, viewer, values, rows, tried=tried)

    await resulting_settings.save(session, settings, viewer.user.username)
    return see_other(PATH, flash=SAVED)


async def _dry_run(
    session: SessionDep, db: DatabaseDep, viewer: SignedIn, settings: ResultingSettings
) -> DryRun | dict[str, Any]:
    try:
        return await dry_run(session, db, viewer.user, settings)
    except AppError as error:
        # The dry run could not be made at all: said where its checks would be.
        return {
            "ok": False,
            "checks": [{"name": "The dry run", "ok": False, "detail": error.message}],
        }
