"""One error hierarchy for the API, and the handlers that give every error the same shape:
`{"error": {"code": ..., "message": ..., ...}}` (DESIGN.md §8)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.types import ExceptionHandler

from core.db import DatabaseBusy
from models.lifecycle import Refusal

log = logging.getLogger("jobline.api")


class AppError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


class NotAuthenticated(AppError):
    status_code = 401
    code = "not_authenticated"


class NotPermitted(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class Invalid(AppError):
    status_code = 422
    code = "invalid"


def _bytes(size: int) -> str:
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


class TooLarge(AppError):
    status_code = 413
    code = "too_large"

    @classmethod
    def body_over(cls, limit: int | None) -> TooLarge:
        if limit is None:
            return cls("the request body is larger than this route takes; send less")
        return cls(
            f"the request body is larger than this route takes: at most {limit:,} bytes "
            f"({_bytes(limit)}); send less",
            max_bytes=limit,
        )


class TooDeep(AppError):
    """JSON nested deeper than any Jobline document goes: refused before it is parsed."""

    status_code = 422
    code = "validation_error"

    @classmethod
    def nested_over(cls, limit: int) -> TooDeep:
        return cls(
            f"the body is not JSON this API takes: it is nested more than {limit} levels deep",
            max_depth=limit,
        )


class RaisedInBody(StarletteHTTPException):
    """An AppError raised while FastAPI reads a body. FastAPI lets only HTTP exceptions out of
    its body reading (anything else becomes a 400 of its own), so the error travels wrapped."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.status_code, error.message)
        self.error = error


class Unavailable(AppError):
    """Jobline cannot take this now (the database or the workflow service is busy or down);
    the same request later can succeed."""

    status_code = 503
    code = "unavailable"
    retry_after_s = 2


class Busy(Unavailable):
    """The database did not take the work in time (locked, out of connections)."""

    code = "busy"


_REFUSAL_STATUS = {"role_not_allowed": 403, "event_not_allowed": 409, "invalid_event": 422}


class EventRefused(AppError):
    """The lifecycle rules refused an event: 403 for the role, 409 for the stage, 422 payload."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(
            refusal.message,
            stage=refusal.stage.value if refusal.stage else None,
            allowed_events=refusal.allowed_events,
        )
        self.code = refusal.code
        self.status_code = _REFUSAL_STATUS[refusal.code]


def respond(exc: AppError) -> JSONResponse:
    """The answer to an AppError, wherever it is raised (a handler, or middleware before one)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, Unavailable):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=headers)


def handler_for(app: FastAPI, exc: Exception) -> ExceptionHandler | None:
    """The app's handler for this exception (by its class, most specific first): for middleware,
    which runs outside the handlers, to answer as the app would."""
    for kind in type(exc).__mro__:
        if kind in app.exception_handlers:
            return app.exception_handlers[kind]
    return None


def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def _describe(errors: list[Any]) -> str:
    parts = []
    for err in errors[:5]:
        if err.get("type") == "json_invalid":  # FastAPI puts the character position in loc
            reason = (err.get("ctx") or {}).get("error", "it cannot be parsed")
            at = (err.get("loc") or ("?",))[-1]
            parts.append(f"the body is not valid JSON: {reason} (at character {at})")
            continue
        loc = list(err.get("loc", ()))
        where = ".".join(str(p) for p in loc if p not in ("body", "query", "path"))
        where = where or ("body" if loc == ["body"] else "")
        parts.append(
            f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", "invalid")
        )
    return "; ".join(parts) or "the request is not valid"


def _errors_as_json(app: FastAPI) -> None:
    """FastAPI files a route's declared error bodies under the route's own media type (a CSV
    export's under text/csv); errors are JSON whatever the route serves."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            for operations in generate()["paths"].values():
                for operation in operations.values():
                    for response in operation.get("responses", {}).values():
                        for media in response.get("content", {}).values():
                            if media.get("schema") == {"$ref": ERROR_BODY_REF}:
                                response["content"] = {"application/json": media}
                                break
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _errors_as_json(app)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        # Under a page (api/web/pages.py marks them), the same error reads as a page.
        as_page = getattr(request.app.state, "render_page_error", None)
        if as_page is not None and request.scope.get("jobline.page"):
            return as_page(request, exc)
        return respond(exc)

    async def _database_busy(request: Request, exc: Exception) -> Response:
        # Back-pressure, not a fault: a warning without a traceback, and a 503 to retry.
        log.warning("database busy on %s %s: %s", request.method, request.url.path, exc)
        return await _app_error(request, Busy("the database is busy; try again shortly"))

    for busy in (DatabaseBusy, OperationalError, PoolTimeout):
        app.add_exception_handler(busy, _database_busy)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return _error(422, "validation_error", _describe(list(exc.errors())), details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, RaisedInBody):
            return respond(exc.error)
        if exc.status_code == 413:  # FastAPI's body limit, counted as the body arrives
            return respond(TooLarge.body_over(request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)))
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (not UTF-8): the same mistake
            # as malformed JSON, so the same answer.
            return _error(
                422, "validation_error", "the body could not be parsed: send UTF-8 encoded JSON"
            )
        code = {404: "not_found", 405: "method_not_allowed", 401: "not_authenticated"}.get(
            exc.status_code, "http_error"
        )
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal_error", "something went wrong on our side; it has been logged")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(
        description="What kind of error, for programs: not_authenticated, forbidden, not_found, "
        "event_not_allowed, role_not_allowed, invalid_event, invalid, validation_error, "
        "too_large, busy, unavailable, internal_error, ..."
    )
    message: str = Field(description="What went wrong and what to do about it, for people")
    stage: str | None = Field(None, description="Refused events: the job's stage")
    allowed_events: list[str] | None = Field(
        None, description="Refused events: the events the job takes now"
    )
    details: list[dict[str, Any]] | None = Field(
        None, description="Validation errors: each with `loc`, `msg` and `type`"
    )
    max_bytes: int | None = Field(None, description="413: the most this route reads")


class ErrorBody(BaseModel):
    """Every error Jobline answers has this shape (DESIGN.md §8)."""

    error: ErrorDetail


ERROR_BODY_REF = "#/components/schemas/ErrorBody"


WHY: dict[int, str] = {
    401: "Missing or unknown bearer token (checked before a request body is read)",
    403: "Your role may not do this; the message says who may",
    404: "Not found (or not visible to you)",
    409: "The job's stage refuses the event (a final job takes none); `allowed_events` says "
    "what it takes",
    413: "The body is larger than this route reads (see `max_bytes`); nothing was read or done",
    422: "The request is not valid; the message says what to fix",
    503: "Busy or unreachable (the database or the workflow service), or the job did not take "
    "the event in time: retry after `Retry-After` s; the message says whether anything was done",
}


def error_responses(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the shared error body; `why`
    (`_409="..."`) words a status for one route."""
    return {
        status: {"model": ErrorBody, "description": why.get(f"_{status}", WHY[status])}
        for status in statuses
    }


# What every route behind a bearer token and a role check can answer; routes add their own.
ERROR_RESPONSES = error_responses(401, 403, 503)
# A route that reads a body can also answer that it is too large or not valid.
BODY_ERRORS = error_responses(413, 422)
