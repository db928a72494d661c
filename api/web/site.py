"""The office web app: every page router, in the order their paths must be matched, and the
static files the pages use (our own CSS and scripts; nothing from another host)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from api.web import (
    board,
    clients_pages,
    job_page,
    my_day,
    new_job,
    outbox_page,
    pages,
    pricebook_page,
    reports_page,
    result_form,
    resulting_settings_page,
    routes,
    send_page,
    settings_pages,
    users_page,
)

# /jobs/new before /jobs/{slug}; the Send dialog's /jobs/{slug}/send is its own page.
ROUTERS: tuple[APIRouter, ...] = (
    routes.router,
    board.router,
    new_job.router,
    send_page.router,
    job_page.router,
    result_form.router,
    my_day.router,
    clients_pages.router,
    pricebook_page.router,
    outbox_page.router,
    reports_page.router,
    users_page.router,
    settings_pages.router,
    resulting_settings_page.router,
)


def install(app: FastAPI) -> None:
    pages.install(app)
    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
