"""`/clients` and `/clients/{id}` over ASGI on both databases (issue 9 item 4): the search and
tier filter narrow the list and it pages; the client's page shows its details and jobs; an edit
saves only what changed (PATCH semantics), and an invalid one comes back with the input kept;
a technician sees only the clients of their jobs, without notes, and cannot edit; CSRF."""

from __future__ import annotations

import html
import re
import uuid

import httpx

from api.clients import service as clients_service
from api.clients.schemas import ClientCreate
from tests.api.journeys import drive, window
from tests.api.signed_in import SignIn, csrf_of, signed_in_fixture  # noqa: F401
from tests.conftest import Stack

CLIENTS = "/api/v1/clients"


def _tag() -> str:
    return f"cp{uuid.uuid4().hex[:10]}"


def _linked_ids(page: httpx.Response) -> list[int]:
    return [int(i) for i in re.findall(r'href="/clients/(\d+)"', page.text)]


def _edit_form(page: httpx.Response, **changes: str) -> dict[str, str]:
    """The edit form as the page filled it in, with the person's changes."""
    form = page.text[page.text.index('<form method="post" action="/clients/') :]
    form = form[: form.index("</form>")]
    fields: dict[str, str] = {}
    inputs = r'<input type="[a-z]+"(?: id="\w+")? name="(\w+)" value="([^"]*)"'
    for name, value in re.findall(inputs, form):
        fields[name] = html.unescape(value)
    textareas = r'<textarea id="\w+" name="(\w+)"[^>]*>([^<]*)</textarea>'
    for name, value in re.findall(textareas, form):
        fields[name] = html.unescape(value)
    tier = re.search(r'<option value="(\w+)" selected>', form[form.index('name="tier"') :])
    assert tier
    fields["tier"] = tier.group(1)
    fields["csrf_token"] = csrf_of(page)
    return {**fields, **changes}


async def test_the_search_and_the_tier_filter_narrow_the_list(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    rivera = await stack.new_client(name=f"{tag} Rivera Residence", phone="+1 555 0199")
    quay = await stack.new_client(name=f"{tag} Quay Offices", email=f"{tag}-quay@example.com")
    gov = await stack.new_client(name=f"{tag} Town Hall", tier="gov")
    sales = await signed_in("sales")

    everyone = await sales.get("/clients", params={"q": tag})
    assert everyone.status_code == 200
    assert sorted(_linked_ids(everyone)) == sorted([rivera["id"], quay["id"], gov["id"]])
    assert "3 clients matching" in everyone.text
    by_name = await sales.get("/clients", params={"q": f"{tag} RIVERA"})
    assert _linked_ids(by_name) == [rivera["id"]]
    by_email = await sales.get("/clients", params={"q": f"{tag}-quay@"})
    assert _linked_ids(by_email) == [quay["id"]]
    by_tier = await sales.get("/clients", params={"q": tag, "tier": "gov"})
    assert _linked_ids(by_tier) == [gov["id"]]
    assert '<option value="gov" selected>' in by_tier.text  # the filter as chosen
    assert f'value="{tag}"' in by_tier.text
    nothing = await sales.get("/clients", params={"q": f"{tag} nobody"})
    assert _linked_ids(nothing) == [] and "No client matches." in nothing.text
    # Nonsense in the query string is ignored, not an error.
    odd = await sales.get("/clients", params={"q": tag, "tier": "diamond", "page": "x"})
    assert odd.status_code == 200 and len(_linked_ids(odd)) == 3


async def test_the_list_pages(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    async with stack.db.session() as session:
        for n in range(27):
            await clients_service.create(session, ClientCreate(name=f"{tag} {n:02d}"))
    office = await signed_in("office")
    first = await office.get("/clients", params={"q": tag})
    assert len(_linked_ids(first)) == 25
    assert "Showing 1–25 of 27 clients" in first.text and "Page 1 of 2" in first.text
    found = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert found
    second = await office.get(html.unescape(found.group(1)))
    assert len(_linked_ids(second)) == 2 and "Showing 26–27 of 27" in second.text
    assert set(_linked_ids(first)).isdisjoint(_linked_ids(second))
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text


async def test_the_client_page_shows_its_details_and_jobs(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    client = await stack.new_client(
        name=f"{tag} Harbour Dental", phone="+1 555 0123", notes="Gate code 4411", tier="platinum"
    )
    job = await stack.new_job(client_id=client["id"], title=f"{tag} Compressor noise")
    other = await stack.new_job(title=f"{tag} Not theirs")
    office = await signed_in("office")
    page = await office.get(f"/clients/{client['id']}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f"{tag} Harbour Dental" in text and f"C-{client['id']:05d}" in text
    assert "+1 555 0123" in text and "Gate code 4411" in text and "Platinum" in text
    assert f'href="/jobs/{job["slug"]}"' in page.text and f"{tag} Compressor noise" in text
    assert ">lead</span>" in page.text  # its stage
    assert other["slug"] not in page.text
    assert f'href="/jobs/new?client_id={client["id"]}"' in page.text
    assert 'action="/clients/' in page.text  # the edit form

    assert (await office.get("/clients/999999999")).status_code == 404
    assert (await office.get("/clients/not-a-number")).status_code == 404


async def test_an_edit_saves_only_what_changed(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    client = await stack.new_client(
        name=f"{tag} Cedar Flats", email=f"{tag}@example.com", phone="+1 555 0111", notes="Old"
    )
    office = await signed_in("office")
    page = await office.get(f"/clients/{client['id']}")
    # Meanwhile someone changes the notes through the API; this form still shows "Old".
    assert (await stack.patch("olga", f"{CLIENTS}/{client['id']}", {"notes": "New"})).is_success

    form = _edit_form(page, phone="+1 555 0222", tier="gov", billing_email="", address="2 Elm St")
    assert form["notes"] == form["was_notes"] == "Old"
    saved = await office.post(f"/clients/{client['id']}", data=form)
    assert saved.status_code == 303 and saved.headers["location"] == f"/clients/{client['id']}"
    now = (await stack.get("olga", f"{CLIENTS}/{client['id']}")).json()
    assert (now["phone"], now["tier"], now["address"]) == ("+1 555 0222", "gov", "2 Elm St")
    assert now["notes"] == "New"  # not written back: this person did not change it
    assert now["email"] == f"{tag}@example.com" and now["name"] == f"{tag} Cedar Flats"
    shown = await office.get(saved.headers["location"])
    assert "Saved" in shown.text and "phone, tier, address changed" in shown.text
    assert "+1 555 0222" in shown.text

    # Emptying the email clears it, as PATCH with null does.
    cleared = await office.post(f"/clients/{client['id']}", data=_edit_form(shown, email=""))
    assert cleared.status_code == 303
    assert (await stack.get("olga", f"{CLIENTS}/{client['id']}")).json()["email"] is None


async def test_an_invalid_edit_comes_back_with_the_input_kept(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    client = await stack.new_client(name=f"{tag} Birch Court", email=f"{tag}@example.com")
    manager = await signed_in("manager")
    page = await manager.get(f"/clients/{client['id']}")
    answer = await manager.post(
        f"/clients/{client['id']}",
        data=_edit_form(page, name=" ", email="nope", phone="+1 555 0333", notes="Keep <me>"),
    )
    assert answer.status_code == 422
    assert "There is a problem" in answer.text
    assert 'href="#name"' in answer.text and 'href="#email"' in answer.text
    assert "Enter the client&#39;s name" in answer.text
    assert 'id="email-error"' in answer.text and 'aria-invalid="true"' in answer.text
    assert 'value="nope"' in answer.text and 'value="+1 555 0333"' in answer.text
    assert ">Keep &lt;me&gt;</textarea>" in answer.text
    unchanged = (await stack.get("olga", f"{CLIENTS}/{client['id']}")).json()
    assert (unchanged["name"], unchanged["phone"]) == (f"{tag} Birch Court", None)


async def test_a_technician_sees_only_the_clients_of_their_jobs_and_cannot_edit(
    stack: Stack, signed_in: SignIn
) -> None:
    tag = _tag()
    theirs = await stack.new_client(name=f"{tag} Lantern Bakery", notes=f"slow payer {tag}")
    other = await stack.new_client(name=f"{tag} Elm Court")
    job = await stack.new_job(client_id=theirs["id"], title=f"{tag} Oven fan")
    await drive(
        stack,
        job["slug"],
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": "tess", **window()}),
        ],
    )
    await stack.new_job(client_id=theirs["id"], title=f"{tag} Not assigned to tess")
    tess = await signed_in(username="tess")

    listed = await tess.get("/clients", params={"q": tag})
    assert _linked_ids(listed) == [theirs["id"]]
    page = await tess.get(f"/clients/{theirs['id']}")
    assert page.status_code == 200 and f"{tag} Lantern Bakery" in page.text
    assert "slow payer" not in page.text and "Internal notes" not in page.text
    assert 'action="/clients/' not in page.text  # no edit form
    assert f"{tag} Oven fan" in page.text and "Not assigned to tess" not in page.text
    assert 'href="/jobs/new' not in page.text  # no "new job" button
    assert (await tess.get(f"/clients/{other['id']}")).status_code == 404

    refused = await tess.post(
        f"/clients/{theirs['id']}", data={"csrf_token": csrf_of(page), "name": "Renamed"}
    )
    assert refused.status_code == 403
    assert "changing clients is for: admin, manager, office, sales" in refused.text
    assert (await stack.get("olga", f"{CLIENTS}/{theirs['id']}")).json()["name"] == (
        f"{tag} Lantern Bakery"
    )


async def test_an_edit_without_its_csrf_token_is_refused(stack: Stack, signed_in: SignIn) -> None:
    tag = _tag()
    client = await stack.new_client(name=f"{tag} Quay Offices")
    office = await signed_in("office")
    page = await office.get(f"/clients/{client['id']}")
    form = _edit_form(page, name=f"{tag} Hijacked")
    for sent in ({k: v for k, v in form.items() if k != "csrf_token"}, {**form, "csrf_token": "x"}):
        refused = await office.post(f"/clients/{client['id']}", data=sent)
        assert refused.status_code == 403 and "This form could not be accepted" in refused.text
    assert (await stack.get("olga", f"{CLIENTS}/{client['id']}")).json()["name"] == (
        f"{tag} Quay Offices"
    )
