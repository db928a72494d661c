"""The board, /jobs (issue 9 item 2), over ASGI on both databases: filters narrow it, columns
count and total, badges say why, a technician sees only their own jobs, and the fragment the
page's script polls changes when a job does.

Jobs come two ways: through the API (a real workflow) where the lifecycle can reach the state
quickly, and, for states that need days to pass (stuck, stale, overdue, unpaid), as the
projection rows the workflow would have written (bench/pages.py's `job_state`, written with
core/projection_store.job_row). Each test has a client of its own and filters by it, so the
shared database's other jobs never change what it expects.
"""

from __future__ import annotations

import html
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.users.service import create_user, set_password
from bench.pages import job_state, write_states
from core.config import Settings
from models.lifecycle import ClientSnapshot, JobState, Stage
from models.tables import Job
from tests.conftest import Stack

PASSWORD = "board page password"


@pytest.fixture
async def web(stack: Stack) -> AsyncIterator[Callable[..., Any]]:
    """A signed-in person's client (one app for the test, on the shared stack's database)."""
    async with AsyncExitStack() as running:
        settings = Settings(environment="test", task_queue=stack.task_queue)
        app = create_app(settings, db=stack.db, temporal=stack.temporal)
        await running.enter_async_context(app.router.lifespan_context(app))

        @asynccontextmanager
        async def _client(username: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://jobline.test") as c:
                if username:
                    await _sign_in(c, username)
                yield c

        yield _client


async def _person(stack: Stack, role: str) -> str:
    username = f"b{uuid.uuid4().hex[:8]}"
    async with stack.db.session() as session:
        user = await create_user(session, username, role, f"{username}@jobline.test")
        await set_password(session, user, PASSWORD)
    return username


async def _sign_in(client: httpx.AsyncClient, username: str) -> None:
    form = await client.get("/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    answer = await client.post(
        "/signin", data={"login": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 303, answer.text


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def columns(page: str) -> dict[str, dict[str, Any]]:
    """Each milestone column: its count, its money total and its cards' slugs."""
    found = {}
    for milestone, body in re.findall(
        r'<section class="board-column"[^>]*data-milestone="([^"]+)">(.*?)</section>', page, re.S
    ):
        count = re.search(r'class="column-count">(\d+) job', body)
        amount = re.search(r'class="column-amount">([^<]*)<', body)
        assert count and amount, body
        found[milestone] = {
            "count": int(count.group(1)),
            "amount": amount.group(1),
            "slugs": re.findall(r'data-slug="([^"]+)"', body),
        }
    return found


def cards(page: str) -> dict[str, str]:
    """Each card's (or list row's) words, by the job's slug."""
    found = re.findall(r'<li class="card" data-slug="([^"]+)">(.*?)</li>', page, re.S)
    found += re.findall(r'<tr data-slug="([^"]+)">(.*?)</tr>', page, re.S)
    return {slug: _text(body) for slug, body in found}


def attention(page: str) -> dict[str, int]:
    pairs = re.findall(
        r'<span class="tag [^"]+">([^<]+)</span>\s*<strong class="attention-count">(\d+)</strong>',
        page,
    )
    return {word: int(n) for word, n in pairs}


async def _seed(stack: Stack, client: dict[str, Any], jobs: list[dict[str, Any]]) -> list[JobState]:
    """Projection rows for these jobs (job_state's keyword arguments each) under `client`."""
    rng = random.Random(7)
    now = datetime.now(UTC)
    snapshot = ClientSnapshot(id=client["id"], name=client["name"])
    states = [
        job_state(f"t{uuid.uuid4().hex[:10]}", snapshot, rng=rng, now=now, **job) for job in jobs
    ]
    await write_states(stack.db, [(s, now - timedelta(minutes=i)) for i, s in enumerate(states)])
    return states


async def test_not_signed_in_goes_to_sign_in(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    async with web() as client:
        for path in ("/jobs", "/jobs?view=list&stage=lead", "/jobs/board.fragment"):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/signin?next=%2Fjobs")


async def test_filters_narrow_the_board_and_the_list(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    mine = await stack.new_client()
    other = await stack.new_client()
    word = uuid.uuid4().hex[:6]
    owned = await stack.new_job(client_id=mine["id"], title=f"Boiler {word}")
    free = await stack.new_job(client_id=mine["id"], title="Gutter clean")
    elsewhere = await stack.new_job(client_id=other["id"], title=f"Boiler {word} too")
    assert (await stack.event("olga", owned["slug"], "owner_assigned", owner="sam")).is_success
    office = await _person(stack, "office")
    async with web(office) as client:
        board = (await client.get(f"/jobs?client=C-{mine['id']:05d}")).text
        lead = columns(board)["Lead"]
        assert set(lead["slugs"]) == {owned["slug"], free["slug"]} and lead["count"] == 2
        assert f"{2} jobs</strong> match these filters" in board
        assert elsewhere["slug"] not in board

        # Owner, waiting on and text each narrow further; the list view takes the same filters.
        by_owner = await client.get(f"/jobs?client={mine['id']}&owner=sam")
        assert set(cards(by_owner.text)) == {owned["slug"]}
        waiting = await client.get(f"/jobs?client={mine['id']}&waiting_on=office&view=list")
        assert set(cards(waiting.text)) == {free["slug"]}
        assert "Waiting on" in waiting.text and "Office" in cards(waiting.text)[free["slug"]]
        text = await client.get(f"/jobs?q={word}&view=list")
        assert set(cards(text.text)) == {owned["slug"], elsewhere["slug"]}
        stage = await client.get(f"/jobs?client={mine['id']}&stage=prospect")
        assert columns(stage.text) == {"Prospect": {"count": 0, "amount": "$0.00", "slugs": []}}
        # The stage picker counts the jobs the other filters leave.
        assert re.search(r'value="lead" >Lead \(2\)', board), board

        # A technician filter and a stuck filter leave nothing of these leads.
        none = await client.get(f"/jobs?client={mine['id']}&technician=tess&stuck=yes")
        assert not cards(none.text) and "0 jobs" in none.text

        # The JSON list takes the same owner, technician and waiting-on filters.
        api = await stack.get("olga", f"/api/v1/jobs?client_id={mine['id']}&owner=sam")
        assert [j["slug"] for j in api.json()["items"]] == [owned["slug"]]
        api = await stack.get("olga", f"/api/v1/jobs?client_id={mine['id']}&waiting_on=office")
        assert [j["slug"] for j in api.json()["items"]] == [free["slug"]]
        api = await stack.get("olga", f"/api/v1/jobs?client_id={mine['id']}&technician=tess")
        assert api.json()["items"] == []

        # A value that is no filter is left out, and said so; the page still answers (a NUL
        # included, which PostgreSQL could not even compare).
        assert (await client.get(f"/jobs?q=a%00b&owner=%00&client={mine['id']}")).status_code == 200
        odd = await client.get(f"/jobs?client={mine['id']}&stage=nonsense")
        assert odd.status_code == 200 and "Stage: there is no &#39;nonsense&#39;" in odd.text
        assert set(cards(odd.text)) == {owned["slug"], free["slug"]}


async def test_columns_count_and_total_and_hide_closed_jobs(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    client_row = await stack.new_client()
    states = await _seed(
        stack,
        client_row,
        [
            {"stage": Stage.quote_sent},
            {"stage": Stage.quote_sent},
            {"stage": Stage.quoting},
            {"stage": Stage.scheduled, "number": 91001},
            {"stage": Stage.awaiting_parts, "number": 91002},
            {"stage": Stage.invoiced, "number": 91003},
            {"stage": Stage.closed, "number": 91004},
            {"stage": Stage.canceled},
        ],
    )
    quotes = sum(s.quote.total for s in states[:3] if s.quote)
    approved = sum(s.contract_amount or 0 for s in states[3:5])
    office = await _person(stack, "office")
    async with web(office) as client:
        board = columns((await client.get(f"/jobs?client={client_row['id']}")).text)
        assert [*board] == ["Lead", "Prospect", "Approved", "Completed", "Invoiced"]
        assert board["Prospect"]["count"] == 3
        assert board["Prospect"]["amount"] == f"${quotes:,.2f}"
        assert board["Approved"]["count"] == 2
        assert board["Approved"]["amount"] == f"${approved:,.2f}"
        assert board["Invoiced"]["count"] == 1 and board["Lead"]["count"] == 0
        closed = [s.slug for s in states[6:]]
        assert not set(closed) & {slug for c in board.values() for slug in c["slugs"]}

        # Closed jobs show when asked for; the card shows its number, not its slug.
        shown = await client.get(f"/jobs?client={client_row['id']}&milestone=Closed")
        assert set(columns(shown.text)["Closed"]["slugs"]) == {states[6].slug}
        assert "#91004" in cards(shown.text)[states[6].slug]

        # The list: every open job once, numbers right-aligned, amounts with the symbol.
        listing = await client.get(f"/jobs?client={client_row['id']}&view=list")
        assert set(cards(listing.text)) == {s.slug for s in states[:6]}
        amount = f"${states[3].contract_amount:,.2f}"
        assert f'<td class="num" data-label="Amount">{amount}</td>' in listing.text


async def test_badges_and_the_attention_strip_say_why(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    client_row = await stack.new_client()
    stuck, stale, parts, lead, unpaid, calm = await _seed(
        stack,
        client_row,
        [
            {"stage": Stage.ready_to_schedule, "number": 92001, "stuck": True},
            {"stage": Stage.quote_sent, "stuck": True, "stale_quote": True},
            {"stage": Stage.awaiting_parts, "number": 92002, "parts_overdue": True},
            {"stage": Stage.lead, "owner": None},
            {"stage": Stage.verified, "number": 92003},
            {"stage": Stage.scheduled, "number": 92004},
        ],
    )
    office = await _person(stack, "office")
    async with web(office) as client:
        page = (await client.get(f"/jobs?client={client_row['id']}")).text
        assert attention(page) == {
            "Stuck": 1,
            "Stale quote": 1,
            "Parts overdue": 1,
            "Unassigned": 1,
            "Unpaid": 1,
            "Unresulted": 0,
        }
        words = cards(page)
        assert "Stuck Ready to schedule for more than 72 h, since" in words[stuck.slug]
        assert "Stale quote no answer after 3 follow-up(s); quote sent" in words[stale.slug]
        assert "Stuck" not in words[stale.slug].replace("Stale quote", "")
        sku = parts.parts[0].line.sku
        assert f"Parts overdue {sku} past expected delivery" in words[parts.slug]
        assert "Unassigned no owner for" in words[lead.slug]
        assert unpaid.invoice is not None
        assert f"Unpaid invoice ${unpaid.invoice.total:,.2f} sent" in words[unpaid.slug]
        assert "$0.00 paid" in words[unpaid.slug]
        assert not any(tag in words[calm.slug] for tag in ("Stuck", "Unpaid", "overdue"))
        # The next reminder says what it is, in the company's zone, named.
        assert re.search(
            r"Next: Appointment reminder to the customer, \w{3} .* UTC", words[calm.slug]
        )

        # Each strip entry leads to the list of those jobs.
        for kind, job in (("stuck", stuck), ("stale_quote", stale), ("unpaid", unpaid)):
            listed = await client.get(f"/jobs?client={client_row['id']}&attention={kind}&view=list")
            assert set(cards(listed.text)) == {job.slug}, kind
        stuck_only = await client.get(f"/jobs?client={client_row['id']}&stuck=yes&view=list")
        assert set(cards(stuck_only.text)) == {stuck.slug, stale.slug}
        # With one reason picked, the strip still counts the others.
        picked = await client.get(f"/jobs?client={client_row['id']}&attention=stuck")
        assert attention(picked.text)["Unpaid"] == 1 and attention(picked.text)["Stuck"] == 1


async def test_an_unresulted_job_is_flagged_on_the_board_and_in_the_list(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    client_row = await stack.new_client()
    unresulted, resulted = await _seed(
        stack,
        client_row,
        [{"stage": Stage.quote_sent}, {"stage": Stage.quote_sent}],
    )
    # The resulting workflow's flag, as its activity writes it (flagging is tested elsewhere).
    due = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
    async with stack.db.session() as session:
        row = await session.get(Job, unresulted.slug)
        assert row is not None
        row.unresulted, row.resulting_due_at = True, due
        session.add(row)
        await session.commit()
    office = await _person(stack, "office")
    async with web(office) as client:
        page = (await client.get(f"/jobs?client={client_row['id']}")).text
        assert attention(page)["Unresulted"] == 1
        words = cards(page)
        assert "Unresulted no result, due since" in words[unresulted.slug]
        assert "due since Wed 4 Mar 2026" in words[unresulted.slug]
        assert "Unresulted" not in words[resulted.slug]
        listed = await client.get(f"/jobs?client={client_row['id']}&attention=unresulted&view=list")
        assert set(cards(listed.text)) == {unresulted.slug}
    # The JSON list says so too.
    answer = await stack.get("olga", "/api/v1/jobs", params={"q": unresulted.slug})
    assert answer.status_code == 200, answer.text
    assert [(i["slug"], i["unresulted"]) for i in answer.json()["items"]] == [
        (unresulted.slug, True)
    ]


async def test_the_list_is_paginated(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    client_row = await stack.new_client()
    states = await _seed(stack, client_row, [{"stage": Stage.lead} for _ in range(53)])
    office = await _person(stack, "office")
    async with web(office) as client:
        first = await client.get(f"/jobs?client={client_row['id']}&view=list")
        assert len(cards(first.text)) == 50 and "Page 1 of 2" in first.text
        second_url = re.search(r'<a href="([^"]+)" rel="next">Next page</a>', first.text)
        assert second_url, first.text
        second = await client.get(html.unescape(second_url.group(1)))
        assert len(cards(second.text)) == 3 and "Page 2 of 2" in second.text
        assert set(cards(first.text)) | set(cards(second.text)) == {s.slug for s in states}
        # The board shows the first cards of the column and says how many more there are.
        board = await client.get(f"/jobs?client={client_row['id']}")
        assert len(columns(board.text)["Lead"]["slugs"]) == 15
        assert "and 38 more — see the list" in board.text


async def test_a_technician_sees_only_their_own_jobs_and_no_office_controls(
    stack: Stack,
    web,  # type: ignore[no-untyped-def]
) -> None:
    tech, other = await _person(stack, "technician"), await _person(stack, "technician")
    client_row = await stack.new_client()
    theirs, not_theirs, unassigned = await _seed(
        stack,
        client_row,
        [
            {"stage": Stage.scheduled, "number": 93001, "technician": tech},
            {"stage": Stage.scheduled, "number": 93002, "technician": other},
            {"stage": Stage.ready_to_schedule, "number": 93003},
        ],
    )
    async with web(tech) as client:
        for path in (
            "/jobs",
            "/jobs?view=list",
            f"/jobs?technician={other}",
            "/jobs/board.fragment",
        ):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert set(cards(page.text)) == {theirs.slug}, path
            assert not_theirs.slug not in page.text and unassigned.slug not in page.text
        board = (await client.get("/jobs")).text
        assert "<h1>My jobs</h1>" in board
        for office_only in ("Needs attention", 'name="owner"', 'name="technician"', "/jobs/new"):
            assert office_only not in board, office_only
        assert columns(board)["Approved"]["count"] == 1


async def test_the_fragment_changes_when_another_persons_event_lands(stack: Stack, web) -> None:  # type: ignore[no-untyped-def]
    client_row = await stack.new_client()
    job = await stack.new_job(client_id=client_row["id"])
    office = await _person(stack, "office")
    async with web(office) as client:
        path = f"/jobs/board.fragment?client={client_row['id']}"
        before = await client.get(path)
        assert before.status_code == 200 and "<html" not in before.text
        assert columns(before.text)["Lead"]["slugs"] == [job["slug"]]
        again = await client.get(path)
        assert again.headers["X-Board-Stamp"] == before.headers["X-Board-Stamp"]

        # Other people's events: Olga gives the lead to Sam, Sam qualifies it; the card moves.
        assert (await stack.event("olga", job["slug"], "owner_assigned", owner="sam")).is_success
        assert (await stack.event("sam", job["slug"], "lead_qualified")).is_success
        after = await client.get(path)
        assert after.headers["X-Board-Stamp"] != before.headers["X-Board-Stamp"]
        moved = columns(after.text)
        assert moved["Lead"]["slugs"] == [] and moved["Prospect"]["slugs"] == [job["slug"]]
        assert "Owner: sam" in cards(after.text)[job["slug"]]
