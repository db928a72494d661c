"""The technician's day on a phone, `/my`: their visits in window order, the next one open, each
with ONE next step. "On my way" and "Arrived" are one-tap forms posting to the job page's event
endpoint (`POST /jobs/{slug}/events/{type}`); "Complete" and "Can't finish" open that event's
form (`GET /jobs/{slug}/events/{type}?back=/my`). No office controls: the rules decide what a
technician may send, and the job page's endpoint sends it through the same service as the API.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from api.clients import service as clients
from api.deps import SessionDep
from api.jobs.visits import technician_visits
from api.web.pages import Viewer, page_router, render
from core import settings_store
from core.company import Company
from models.communications import CommunicationSettings
from models.lifecycle import JobState, Stage
from models.tables import Job

router = page_router()
HERE = "/my"


@dataclass
class Step:
    """The one next thing to do on a visit: a one-tap form (`post`) or a link to a form."""

    label: str
    hint: str
    event: str
    post: bool
    fields: dict[str, str]
    secondary: tuple[str, str] | None = None  # (label, event) of a second link


@dataclass
class Visit:
    job: Job
    state: JobState
    window: str
    local_day: date | None
    address: str
    maps: str
    phones: list[tuple[str, str, str]]  # (label, number as written, number for tel:)
    status: str
    step: Step | None
    waiting: str
    idempotency_key: str


STATUS = {
    Stage.scheduled: "Scheduled",
    Stage.dispatched: "On the way",
    Stage.on_site: "On site",
    Stage.completed: "Completed",
    Stage.invoiced: "Completed, invoiced",
    Stage.verified: "Completed, verified",
    Stage.closed: "Closed",
}


def _told(state: JobState, sms_enabled: bool) -> str:
    """What "On my way" sends the customer (activities/messages.py: an email to the client's
    address, and an SMS to their phone when SMS is on), in words."""
    texts = sms_enabled and bool(state.client.phone)
    emails = bool(state.client.email)
    if texts and emails:
        return "Texts and emails the customer that you are on the way."
    if texts:
        return "Texts the customer that you are on the way."
    if emails:
        return "Emails the customer that you are on the way (no text: SMS is off or no mobile)."
    return "The customer has no mobile number or email on file: nothing is sent to them."


def _step(state: JobState, sms_enabled: bool) -> tuple[Step | None, str]:
    if state.stage == Stage.scheduled:
        if state.checklist is None:
            return None, "The office has not finished the checklist for this visit yet."
        return Step(
            "On my way",
            _told(state, sms_enabled),
            "tech_dispatched",
            post=True,
            fields={"notify_customer": "on"},
        ), ""
    if state.stage == Stage.dispatched:
        return Step("Arrived", "Tells the office you are on site.", "tech_checked_in", True, {}), ""
    if state.stage == Stage.on_site:
        return Step(
            "Complete",
            "The work performed, parts used and the receipt.",
            "job_completed",
            post=False,
            fields={},
            secondary=("Can't finish", "job_incomplete"),
        ), ""
    return None, ""


def _tel(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit() or ch == "+")


async def _visit(session: SessionDep, company: Company, job: Job, sms_enabled: bool) -> Visit:
    state = JobState.model_validate(job.state)
    window, local_day = "", None
    if state.schedule is not None:
        window = company.window(state.schedule.window_start, state.schedule.window_end)
        local_day = state.schedule.window_start.astimezone(company.zone).date()
    address = state.site_address
    if not address:
        client = await clients.find(session, state.client.id)
        address = client.address if client is not None else ""
    phones: list[tuple[str, str]] = []
    if state.client.phone and _tel(state.client.phone):
        phones.append((f"Call {state.client.name}", state.client.phone))
    check_in = state.checklist.check_in_phone if state.checklist else ""
    if check_in and _tel(check_in) != _tel(state.client.phone or ""):
        phones.append(("Call the check-in number", check_in))
    step, waiting = _step(state, sms_enabled)
    return Visit(
        job=job,
        state=state,
        window=window,
        local_day=local_day,
        address=address,
        maps=f"https://maps.google.com/?q={quote(address)}" if address else "",
        phones=[(label, number, _tel(number)) for label, number in phones],
        status=STATUS.get(state.stage, str(state.stage)) if state.stage else "",
        step=step,
        waiting=waiting,
        idempotency_key=secrets.token_urlsafe(16),
    )


def _day_heading(company: Company, day: date | None, today: date) -> str:
    if day is None:
        return "No window yet"
    if day < today:
        return f"Earlier, not finished: {company.day(day)}"
    if day == today:
        return f"Today, {company.day(day)}"
    if day == today + timedelta(days=1):
        return f"Tomorrow, {company.day(day)}"
    return company.day(day)


@router.get("/my")
async def my_day(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    day: str = "today",
) -> Response:
    if not viewer.is_technician:
        return render(request, "my_day_office.html", viewer)
    done = day == "previous"
    jobs = await technician_visits(session, viewer.user, done=done)
    comms = await settings_store.load(session, settings_store.COMMUNICATIONS, CommunicationSettings)
    visits = [await _visit(session, viewer.company, job, comms.sms_enabled) for job in jobs]
    today = datetime.now(viewer.company.zone).date()
    groups: list[tuple[str, str, list[Visit]]] = []
    for visit in visits:
        heading = _day_heading(viewer.company, visit.local_day, today)
        if done:
            heading = viewer.company.day(visit.local_day) if visit.local_day else "No window"
        if not groups or groups[-1][0] != heading:
            upcoming = (
                not done
                and visit.local_day is not None
                and visit.local_day > today
                and not any(g[1] == "upcoming" for g in groups)
            )
            groups.append((heading, "upcoming" if upcoming else "", []))
        groups[-1][2].append(visit)
    return render(
        request,
        "my_day.html",
        viewer,
        groups=groups,
        next_slug=visits[0].job.slug if visits and not done else None,
        previous=done,
        has_upcoming=any(anchor == "upcoming" for _, anchor, _ in groups),
        here=HERE + ("?day=previous" if done else ""),
        zone=viewer.company.zone.key,
        today=viewer.company.day(today),
    )
