"""Liveness of the API, the database and Temporal; Prometheus metrics."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.outbox import metrics as outbox_metrics
from api.route_index import RouteIndex

router = APIRouter(tags=["operations"])

REQUESTS = Counter("jobline_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("jobline_http_request_seconds", "HTTP request latency", ["method", "route"])


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers: for a liveness probe, which must not fail when a dependency is down."""
    return {"status": "ok"}


@router.get(
    "/healthz",
    responses={503: {"description": "A part is down: `checks` says which (the same shape as 200)"}},
)
async def healthz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {"api": "ok"}
    try:
        async with request.app.state.db.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # a health check reports failures, it does not raise them
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        await asyncio.wait_for(request.app.state.temporal.service_client.check_health(), timeout=3)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    await outbox_metrics.refresh(request.app.state.db)  # messages by status, `unknown` included
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts and times every request by its route's full path template (plain ASGI: no
    per-request task)."""

    def __init__(self, app: ASGIApp, routes: RouteIndex) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            # The route template, not the path: one series per endpoint, not one per job.
            name = self.routes.template(scope)
            method = scope["method"]
            LATENCY.labels(method, name).observe(time.perf_counter() - started)
            REQUESTS.labels(method, name, str(status)).inc()


def install_metrics(app: FastAPI, routes: RouteIndex) -> None:
    app.add_middleware(MetricsMiddleware, routes=routes)
