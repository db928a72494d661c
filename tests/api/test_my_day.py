"""The technician's day, /my (issue 9, item 5), over ASGI on both databases: only this
technician's visits, in window order, each window in the company's zone with the zone named, the
next one open, and one next step per visit (forms and links to the job page's event endpoint)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from api.app import create_app
from api.users.service import add_token, create_user, set_password
from core.company import load_company
from core.config import Settings
from tests.api.journeys import dispatched_and_scheduled, drive
from tests.conftest import Stack

PASSWORD = "correct horse battery"


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(environment="test", task_queue=stack.task_queue),
        db=stack.db,
        temporal=stack.temporal,
    )
    transport = httpx.ASGITransport(app=app, client=(f"10.8.0.{uuid.uuid4().int % 250 + 1}", 1))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://jobline.test") as client,
    ):
        yield client


async def _technician(stack: Stack) -> str:
    username = f"t{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(
            session, username, "technician", f"{username}@jobline.test", display_name="Tia Tech"
        )
        await set_password(session, user, PASSWORD)
        stack.tokens[username] = await add_token(session, user)
    return username


async def _sign_in(client: httpx.AsyncClient, username: str, password: str = PASSWORD) -> None:
    form = await client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    answer = await client.post(
        "/signin", data={"login": username, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.text


SAMPLES = {"text": "ok", "number": "1", "currency": "1.00", "date": "2026-01-02", "checkbox": True}


async def _receipt(stack: Stack) -> dict[str, object]:
    """Values for the receipt fields now required (other tests may configure some)."""
    settings = (await stack.get("ada", "/api/v1/settings/closeout")).json()
    return {
        f["key"]: f["options"][0] if f["type"] == "dropdown" else SAMPLES[f["type"]]
        for f in settings["receipt_fields"]
        if f["required"]
    }


async def _visit(
    stack: Stack, technician: str, start: datetime, *, client: str, steps: tuple[str, ...] = ()
) -> str:
    """A job scheduled for `technician` from `start` (two hours), its checklist done, then
    `steps` sent by the technician."""
    customer = await stack.new_client(
        name=client, phone="+1 555 0142", address="9 Elm St, Springfield"
    )
    job = await stack.new_job(
        client_id=customer["id"], title=f"Visit {client}", description="Gate code 4411.",
    )  # fmt: skip
    window = {
        "window_start": start.isoformat(),
        "window_end": (start + timedelta(hours=2)).isoformat(),
    }
    await drive(
        stack,
        job["slug"],
        [
            *dispatched_and_scheduled(technician, window),
            *((technician, step, {}) for step in steps),
        ],
    )
    return job["slug"]


async def test_my_day_lists_only_my_visits_in_window_order(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    me = await _technician(stack)
    soon = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(hours=1)
    tag = uuid.uuid4().hex[:5]
    # Scheduled out of order: the page orders them by window.
    later = await _visit(stack, me, soon + timedelta(days=1), client=f"Later {tag}")
    first = await _visit(
        stack, me, soon - timedelta(hours=3), client=f"First {tag}",
        steps=("tech_dispatched", "tech_checked_in"),
    )  # fmt: skip
    middle = await _visit(stack, me, soon, client=f"Middle {tag}", steps=("tech_dispatched",))
    theirs = await _visit(stack, "tom", soon - timedelta(hours=1), client=f"Tom's {tag}")

    await _sign_in(web, me)
    page = await web.get("/my")
    assert page.status_code == 200, page.text
    html = page.text
    assert f"Tom&#39;s {tag}" not in html and theirs not in html
    positions = [html.index(f"{name} {tag}") for name in ("First", "Middle", "Later")]
    assert positions == sorted(positions), positions

    async with stack.db.session() as session:
        company = await load_company(session)
    zone = company.zone.key
    assert f"Times in {zone}" in html
    for start in (soon - timedelta(hours=3), soon, soon + timedelta(days=1)):
        # Every window in the company's zone, with the zone's name (EST, CET, UTC…).
        assert company.window(start, start + timedelta(hours=2)) in html

    # The next visit (the earliest still to do) is open; the others are closed.
    cards = re.findall(r'<article class="visit card".*?</article>', html, re.S)
    assert len(cards) == 3
    assert f"First {tag}" in cards[0] and "<details open>" in cards[0]
    assert all("<details open>" not in card for card in cards[1:])
    # One next step each, by where the visit is.
    assert f'href="/jobs/{first}/events/job_completed?back=/my"' in cards[0]
    assert f'href="/jobs/{first}/events/job_incomplete?back=/my"' in cards[0]
    assert f'action="/jobs/{middle}/events/tech_checked_in"' in cards[1]
    assert ">Arrived</button>" in cards[1]
    assert f'action="/jobs/{later}/events/tech_dispatched"' in cards[2]
    assert (
        'name="notify_customer" value="on"' in cards[2]
        and "Texts and emails the customer" in cards[2]
    )
    for card in cards:
        assert 'name="back" value="/my"' in card or "?back=/my" in card
        assert 'href="tel:+15550142"' in card
        assert 'href="https://maps.google.com/?q=9%20Elm%20St%2C%20Springfield"' in card
        assert "Gate code 4411." in card
    # No office controls.
    for office in ("job_scheduled", "invoice_sent", "job_canceled", "/send"):
        assert office not in html

    # The one-tap "On my way", sent as the page's form is: back to /my with a banner, the job
    # dispatched, and the customer told by text and email, naming the technician by display name.
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', cards[2], re.S)
    assert form is not None
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[2]))
    assert set(fields) == {"csrf_token", "back", "idempotency_key", "notify_customer"}
    tapped = await web.post(form[1], data=fields)
    assert tapped.status_code == 303 and tapped.headers["location"] == "/my", tapped.text
    again = await web.post(form[1], data=fields)  # a double tap sends once
    assert again.status_code in (303, 409), again.text
    job = (await stack.get(me, f"/api/v1/jobs/{later}")).json()
    assert job["stage"] == "dispatched"
    told = [(m["channel"], m["body"]) for m in job["communications"] if m["purpose"] == "on_my_way"]
    assert sorted(channel for channel, _ in told) == ["email", "sms"], told
    assert all("Tia Tech" in body and me not in body for _, body in told), told
    after = await web.get("/my")
    assert "Done" in after.text and f'action="/jobs/{later}/events/tech_checked_in"' in after.text

    # Previous: nothing done yet.
    previous = await web.get("/my?day=previous")
    assert previous.status_code == 200 and "No finished visits yet." in previous.text


async def test_previous_lists_done_visits_and_others_see_a_pointer(
    stack: Stack, web: httpx.AsyncClient
) -> None:
    me = await _technician(stack)
    start = datetime.now(UTC).replace(microsecond=0, second=0) - timedelta(hours=2)
    tag = uuid.uuid4().hex[:5]
    done = await _visit(
        stack, me, start, client=f"Done {tag}", steps=("tech_dispatched", "tech_checked_in")
    )
    completed = await stack.event(
        me, done, "job_completed", work_performed="Replaced the fan.", fields=await _receipt(stack)
    )
    assert completed.status_code == 200, completed.text
    await _sign_in(web, me)
    today = await web.get("/my")
    assert f"Done {tag}" not in today.text
    previous = await web.get("/my?day=previous")
    assert f"Done {tag}" in previous.text and "Completed" in previous.text
    assert "events/" not in previous.text  # nothing to do on a finished visit

    async with httpx.AsyncClient(
        transport=web._transport, base_url="http://jobline.test"
    ) as office:
        async with stack.db.session() as session:
            person = await create_user(session, f"o{uuid.uuid4().hex[:8]}", "office", "o@x.test")
            await set_password(session, person, PASSWORD)
        await _sign_in(office, person.username)
        page = await office.get("/my")
        assert page.status_code == 200
        assert "This page is a technician's day" in page.text
        assert 'href="/jobs"' in page.text
