"""The FastAPI application: HTTP in, events to the job workflows, projections out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from temporalio.client import Client as TemporalClient

from api import docs, errors, health
from api.admission import Admission
from api.body_guard import BodyGuard
from api.clients.routes import router as clients_router
from api.documents.routes import router as documents_router
from api.exports.routes import router as exports_router
from api.jobs.routes import router as jobs_router
from api.outbox.routes import router as outbox_router
from api.portal.routes import router as portal_router
from api.pricebook.routes import router as pricebook_router
from api.quotes.routes import router as quote_page_router
from api.reports.routes import router as reports_router
from api.resulting.routes import jobs_router as result_router
from api.resulting.routes import settings_router as resulting_settings_router
from api.route_index import RouteIndex
from api.settings.routes import router as settings_router
from api.users.routes import router as users_router
from api.users.service import TokenCache
from api.web import site as web_site
from core.config import Settings
from core.db import Database
from core.temporal import connect
from core.version import jobline_version

log = logging.getLogger("jobline.api")


async def _connect_with_retry(settings: Settings, attempts: int = 30) -> TemporalClient:
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings)
        except Exception:  # the server may still be starting next to us
            if attempt == attempts:
                raise
            log.info("waiting for Temporal at %s", settings.temporal_address)
            await asyncio.sleep(1)
    raise AssertionError("unreachable")


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    temporal: TemporalClient | None = None,
) -> FastAPI:
    """Tests pass their own database and Temporal client; production builds both from settings."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_db = db is None
        app.state.settings = settings
        app.state.db = db or Database(settings.resolved_database_url)
        app.state.temporal = temporal or await _connect_with_retry(settings)
        app.state.tokens = TokenCache()
        app.state.admission = Admission(settings.api_max_in_flight, settings.api_admission_wait_s)
        try:
            yield
        finally:
            if own_db:
                await app.state.db.dispose()

    app = FastAPI(
        title="Jobline",
        version=jobline_version(),
        description="Every field-service job, first call to final payment, as one workflow.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    errors.install(app)
    web_site.install(app)
    docs.install(app)
    routes = RouteIndex(app)
    # Middleware added last runs first: metrics see every answer, the guard's refusals included.
    app.add_middleware(BodyGuard, routes=routes, max_json_depth=settings.api_max_json_depth)
    health.install_metrics(app, routes)
    # Every route reads at most this much body unless it says otherwise (the logo upload does).
    # Set on a router, not the app: an app-wide limit would answer before the guard can say 401.
    served = APIRouter(max_body_size=settings.api_max_body_bytes)
    for router in (
        health.router,
        users_router,
        clients_router,
        pricebook_router,
        jobs_router,
        outbox_router,
        documents_router,
        settings_router,
        result_router,
        resulting_settings_router,
        exports_router,
        reports_router,
        portal_router,
        quote_page_router,
        *web_site.ROUTERS,
    ):
        served.include_router(router)
    app.include_router(served)
    return app
