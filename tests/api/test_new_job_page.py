"""`/jobs/new` over ASGI on both databases (issue 9 item 4): pick or create a client, the likely
duplicate warning (same name, email or phone), create anyway, a double submit creating one job,
errors with the input kept, who may use the page, and the CSRF refusal."""

from __future__ import annotations

import asyncio
import html
import uuid

import httpx
import pytest

from tests.api.signed_in import SignIn, csrf_of, hidden, signed_in_fixture  # noqa: F401
from tests.conftest import Stack

CLIENTS = "/api/v1/clients"


def _tag() -> str:
    return f"nj{uuid.uuid4().hex[:10]}"


def _phone() -> str:
    digits = f"{uuid.uuid4().int % 10**7:07d}"
    return f"+1 (555) {digits[:3]}-{digits[3:]}"


def _form(page: httpx.Response, **fields: str) -> dict[str, str]:
    """The form's hidden fields (CSRF token, idempotency key) and what the person typed."""
    return {
        "csrf_token": csrf_of(page),
        "idempotency_key": hidden(page, "idempotency_key"),
        "source": "incoming_call",
        "priority": "standard",
        **fields,
    }


async def _clients_named(stack: Stack, tag: str) -> list[dict]:
    found = await stack.get("olga", CLIENTS, params={"q": tag, "page_size": 200})
    return found.json()["items"]


async def _jobs_of(stack: Stack, client_id: int) -> list[dict]:
    return (await stack.get("olga", "/api/v1/jobs", params={"client_id": client_id})).json()[
        "items"
    ]


def _slug_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/jobs/") and location != "/jobs/new", location
    return location.removeprefix("/jobs/")


async def test_an_office_user_creates_a_client_and_its_job(stack: Stack, signed_in: SignIn) -> None:
    office = await signed_in("office")
    tag = _tag()
    page = await office.get("/jobs/new")
    assert page.status_code == 200
    assert 'action="/jobs/new"' in page.text and 'name="idempotency_key"' in page.text
    answer = await office.post(
        "/jobs/new",
        data=_form(
            page,
            name=f"{tag} Rivera Residence",
            email=f"{tag}@example.com",
            phone=_phone(),
            tier="platinum",
            billing_email=f"ap-{tag}@example.com",
            address="12 Harbor Road, Springfield",
            notes="Gate code 4411",
            title="No cooling, unit 4",
            description="Tenant says the unit blows warm air",
            source="incoming_email",
            priority="emergency",
            site_address="",
        ),
    )
    slug = _slug_of(answer)
    assert "Job created for" in answer.headers["set-cookie"]  # the banner for the next page

    [client] = await _clients_named(stack, tag)
    assert (client["tier"], client["billing_email"], client["notes"]) == (
        "platinum",
        f"ap-{tag}@example.com",
        "Gate code 4411",
    )
    job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert job["stage"] == "lead"
    assert job["client"]["id"] == client["id"]
    [item] = await _jobs_of(stack, client["id"])
    assert item["slug"] == slug and item["title"] == "No cooling, unit 4"
    # The job's own fields, as job_created carried them (the site: the client's address).
    created = next(e for e in job["timeline"] if e["type"] == "job_created")
    payload = created["payload"]
    assert (payload["source"], payload["priority"]) == ("incoming_email", "emergency")
    assert payload["site_address"] == "12 Harbor Road, Springfield"
    assert payload["description"] == "Tenant says the unit blows warm air"


async def test_a_search_finds_a_client_and_the_job_goes_to_it(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    wanted = await stack.new_client(name=f"{tag} Quay Offices", address="1 Quay St")
    other = await stack.new_client(name=f"{tag} Lantern Bakery")
    sales = await signed_in("sales")

    found = await sales.get("/jobs/new", params={"q": f"{tag} quay"})
    assert found.status_code == 200
    assert f'name="use_client" value="{wanted["id"]}"' in found.text
    assert f'value="{other["id"]}"' not in found.text
    # Picking it keeps what was typed, and fills the site with the client's address.
    picked = await sales.post(
        "/jobs/new",
        data=_form(found, use_client=str(wanted["id"]), title="Leaking tap", description="Kitchen"),
    )
    assert picked.status_code == 200, picked.text
    assert f'name="client_id" value="{wanted["id"]}"' in picked.text
    assert 'value="Leaking tap"' in picked.text and ">Kitchen</textarea>" in picked.text
    assert ">1 Quay St</textarea>" in picked.text
    assert 'id="name"' not in picked.text  # no new-client fields once one is chosen

    answer = await sales.post(
        "/jobs/new",
        data=_form(
            picked, client_id=str(wanted["id"]), title="Leaking tap", site_address="1 Quay St"
        ),
    )
    slug = _slug_of(answer)
    [job] = await _jobs_of(stack, wanted["id"])
    assert job["slug"] == slug
    assert job["owner"] == (await _username(sales))  # a sales user owns the lead they bring in
    # A client can be chosen from its own page too.
    preset = await sales.get("/jobs/new", params={"client_id": other["id"]})
    assert f'name="client_id" value="{other["id"]}"' in preset.text


async def _username(client: httpx.AsyncClient) -> str:
    page = await client.get("/jobs/new")
    start = page.text.index("Signed in as <strong>") + len("Signed in as <strong>")
    return page.text[start : page.text.index("</strong>", start)]


@pytest.mark.parametrize("same", ["name", "email", "phone"])
async def test_a_likely_duplicate_is_named_before_a_client_is_created(
    stack: Stack, signed_in: SignIn, same: str
) -> None:
    tag = _tag()
    phone = _phone()
    existing = await stack.new_client(
        name=f"{tag} Rivera Residence", email=f"{tag}@example.com", phone=phone
    )
    # Each typed differently from how it was stored: case, spaces, the phone's punctuation.
    typed = {
        "name": f"  {tag.upper()} rivera RESIDENCE ",
        "email": f"{tag.upper()}@Example.com",
        "phone": phone.replace("+1 (555) ", "555.").replace("-", "."),
    }
    fresh = {"name": f"{tag} Someone Else", "email": f"other-{tag}@example.com", "phone": ""}
    office = await signed_in("office")
    page = await office.get("/jobs/new")
    fields = {**fresh, same: typed[same], "title": "Boiler service", "description": "Annual"}
    warned = await office.post("/jobs/new", data=_form(page, **fields))

    assert warned.status_code == 409, warned.text
    words = {"name": "name", "email": "email", "phone": "phone number"}[same]
    number = f"C-{existing['id']:05d}"
    text = html.unescape(warned.text)
    assert f"A client with this {words} already exists: {tag} Rivera Residence ({number})" in text
    assert f'name="use_client" value="{existing["id"]}"' in warned.text
    assert 'name="create_anyway"' in warned.text
    # Nothing created, and everything typed is still there.
    assert [c["id"] for c in await _clients_named(stack, tag)] == [existing["id"]]
    assert html.escape(typed[same].strip(), quote=True) in warned.text or typed[same] in text
    assert 'value="Boiler service"' in warned.text and ">Annual</textarea>" in warned.text

    # "Use it": the job goes to the existing client.
    used = await office.post(
        "/jobs/new", data=_form(warned, **fields, use_client=str(existing["id"]))
    )
    assert f'name="client_id" value="{existing["id"]}"' in used.text
    slug = _slug_of(
        await office.post(
            "/jobs/new", data=_form(used, client_id=str(existing["id"]), title="Boiler service")
        )
    )
    assert [j["slug"] for j in await _jobs_of(stack, existing["id"])] == [slug]
    assert [c["id"] for c in await _clients_named(stack, tag)] == [existing["id"]]


async def test_create_anyway_makes_a_second_client(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    existing = await stack.new_client(name=f"{tag} Harbour Dental")
    office = await signed_in("manager")
    page = await office.get("/jobs/new")
    fields = {"name": f"{tag} Harbour Dental", "title": "Check the compressor"}
    warned = await office.post("/jobs/new", data=_form(page, **fields))
    assert warned.status_code == 409
    slug = _slug_of(
        await office.post("/jobs/new", data=_form(warned, **fields, create_anyway="yes"))
    )
    clients = await _clients_named(stack, tag)
    assert len(clients) == 2
    [new] = [c for c in clients if c["id"] != existing["id"]]
    assert [j["slug"] for j in await _jobs_of(stack, new["id"])] == [slug]


async def test_a_double_submit_creates_one_client_and_one_job(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    office = await signed_in("office")
    page = await office.get("/jobs/new")
    form = _form(page, name=f"{tag} Cedar Flats", email=f"{tag}@example.com", title="Fuse box")
    # Sent twice at once (a double click), then once more (a reload of the answer).
    first, second = await asyncio.gather(
        office.post("/jobs/new", data=form), office.post("/jobs/new", data=form)
    )
    third = await office.post("/jobs/new", data=form)
    slugs = {_slug_of(first), _slug_of(second), _slug_of(third)}
    assert len(slugs) == 1
    [client] = await _clients_named(stack, tag)
    assert [j["slug"] for j in await _jobs_of(stack, client["id"])] == list(slugs)

    # A new form is a new job, for the client already there.
    again = await office.get("/jobs/new", params={"client_id": client["id"]})
    assert hidden(again, "idempotency_key") != form["idempotency_key"]
    other = _slug_of(
        await office.post(
            "/jobs/new", data=_form(again, client_id=str(client["id"]), title="Fuse box")
        )
    )
    assert other not in slugs
    assert len(await _jobs_of(stack, client["id"])) == 2


async def test_errors_come_back_at_the_fields_with_the_input_kept(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    office = await signed_in("office")
    page = await office.get("/jobs/new")
    answer = await office.post(
        "/jobs/new",
        data=_form(
            page,
            name=f"{tag} Birch & Sons",
            email="not-an-email",
            phone="call me",
            tier="diamond",
            title="",
            description="Keep this <text>",
            source="carrier pigeon",
        ),
    )
    assert answer.status_code == 422
    text = answer.text
    assert "There is a problem" in text
    for field in ("email", "phone", "tier", "title", "source"):
        assert f'href="#{field}"' in text, field
        assert f'id="{field}-error"' in text, field
        assert f'aria-describedby="{field}-error"' in text or f"{field}-hint {field}-error" in text
    assert "Enter a title for the job" in text
    # Everything typed is kept (escaped).
    assert f'value="{tag} Birch &amp; Sons"' in text
    assert 'value="not-an-email"' in text and 'value="call me"' in text
    assert ">Keep this &lt;text&gt;</textarea>" in text
    # The same key: the corrected form is still the one request.
    assert hidden(answer, "idempotency_key") == hidden(page, "idempotency_key")
    assert await _clients_named(stack, tag) == []

    missing_name = await office.post("/jobs/new", data=_form(page, name="  ", title="Survey"))
    assert missing_name.status_code == 422
    assert "Enter the client&#39;s name" in missing_name.text
    assert 'href="#name"' in missing_name.text


@pytest.mark.parametrize("role", ["technician", "admin"])
async def test_roles_that_may_not_create_jobs_get_403(
    stack: Stack, signed_in: SignIn, role: str
) -> None:
    person = await signed_in(role)
    page = await person.get("/jobs/new")
    assert page.status_code == 403
    assert "creating jobs is for: manager, office, sales" in page.text
    board = await person.get("/jobs")  # any page of theirs gives a CSRF token
    tag = _tag()
    refused = await person.post(
        "/jobs/new",
        data={
            "csrf_token": csrf_of(board),
            "idempotency_key": "web-x",
            "name": f"{tag} Sneaky",
            "title": "Anything",
            "source": "incoming_call",
        },
    )
    assert refused.status_code == 403
    assert await _clients_named(stack, tag) == []


async def test_a_form_without_its_csrf_token_is_refused(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    office = await signed_in("office")
    page = await office.get("/jobs/new")
    fields = _form(page, name=f"{tag} Elm Court", title="Door lock")
    for form in (
        {k: v for k, v in fields.items() if k != "csrf_token"},
        {**fields, "csrf_token": "forged"},
    ):
        refused = await office.post("/jobs/new", data=form)
        assert refused.status_code == 403
        assert "This form could not be accepted" in refused.text
    assert await _clients_named(stack, tag) == []


async def test_not_signed_in_goes_to_sign_in(stack: Stack) -> None:
    answer = await stack.http.get("/jobs/new")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/signin?next=%2Fjobs%2Fnew"


async def test_a_form_sent_again_with_other_details_creates_nothing_and_says_so(
    stack: Stack, signed_in: SignIn
) -> None:
    client = await stack.new_client(name=f"{_tag()} Maple Row")
    office = await signed_in("office")
    page = await office.get("/jobs/new", params={"client_id": client["id"]})
    form = _form(page, client_id=str(client["id"]), title="Gutter repair")
    slug = _slug_of(await office.post("/jobs/new", data=form))
    # Back in the browser's history, the title changed, the same form sent again.
    again = await office.post("/jobs/new", data={**form, "title": "Gutter repair, rear"})
    assert again.status_code == 409
    assert "This form had already created a job with other details" in again.text
    assert 'value="Gutter repair, rear"' in again.text
    assert f'name="client_id" value="{client["id"]}"' in again.text
    assert hidden(again, "idempotency_key") != form["idempotency_key"]
    assert [j["slug"] for j in await _jobs_of(stack, client["id"])] == [slug]
    # The fresh form it offers creates the second job.
    other = _slug_of(
        await office.post(
            "/jobs/new",
            data=_form(again, client_id=str(client["id"]), title="Gutter repair, rear"),
        )
    )
    assert other != slug and len(await _jobs_of(stack, client["id"])) == 2


async def test_a_client_unlike_any_other_is_created_without_a_warning(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    phone = _phone()
    await stack.new_client(name=f"{tag} Alder Homes", email=f"{tag}@example.com", phone=phone)
    office = await signed_in("office")
    page = await office.get("/jobs/new")
    near_miss = {
        "name": f"{tag} Alder Home",  # not the same name
        "email": f"{tag}@example.org",  # nor the same email
        "phone": phone[:-1] + str((int(phone[-1]) + 1) % 10),  # nor the same number
        "title": "Roof leak",
    }
    _slug_of(await office.post("/jobs/new", data=_form(page, **near_miss)))
    assert len(await _clients_named(stack, tag)) == 2
