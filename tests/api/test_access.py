"""Who sees what (DESIGN.md §3, issue 8 item 11), through the HTTP API on both databases:

- a technician reads only the clients of the jobs assigned to them now, never the office's
  internal notes on a client (single read, list, search);
- a job reassigned to another technician is gone for the one it was taken from, even after they
  worked on it (404 on read and on events);
- a technician cannot change where the customer's messages go (`contact_updated`);
- internal notes (the technician's notes on completion, notes added to the job, the client's
  notes) never reach the customer: not the portal page, the receipt PDF or the closeout email.
"""

from __future__ import annotations

import uuid

from tests.activities.test_documents import flat, pdf_text
from tests.api.journeys import drive, on_site, window
from tests.api.settings import api_error
from tests.api.test_closeout import document, messages
from tests.conftest import Stack

CLIENTS = "/api/v1/clients"


def _tag() -> str:
    return f"zq{uuid.uuid4().hex[:10]}"


async def _scheduled_for(stack: Stack, technician: str, client_id: int) -> str:
    job = await stack.new_job(client_id=client_id)
    await drive(
        stack,
        job["slug"],
        [
            ("olga", "emergency_dispatch", {}),
            ("olga", "job_scheduled", {"technician": technician, **window()}),
        ],
    )
    return job["slug"]


# --- clients ------------------------------------------------------------------------------------


async def test_a_technician_reads_only_the_clients_of_their_jobs_without_notes(
    stack: Stack,
) -> None:
    tag = _tag()
    secret = f"gate code 4411, slow payer {tag}"
    theirs = await stack.new_client(name=f"{tag} Harbour Dental", phone="+1 555 0100", notes=secret)
    other = await stack.new_client(name=f"{tag} Quay Offices", notes=f"other notes {tag}")
    await _scheduled_for(stack, "tess", theirs["id"])

    # The office reads the notes; the assigned technician reads everything else.
    assert (await stack.get("olga", f"{CLIENTS}/{theirs['id']}")).json() == theirs
    read = await stack.get("tess", f"{CLIENTS}/{theirs['id']}")
    assert read.status_code == 200, read.text
    shown = {field: value for field, value in theirs.items() if field != "notes"}
    assert read.json() == shown

    # A client of no job of hers is not found, exactly like one that does not exist.
    assert (
        api_error(await stack.get("tess", f"{CLIENTS}/{other['id']}"), 404)["code"]
        == (api_error(await stack.get("tess", f"{CLIENTS}/{2**31 - 1}"), 404)["code"])
    )

    # The list and its search: her client, without notes; the other not even by name.
    listed = (await stack.get("tess", CLIENTS, params={"q": tag})).json()
    assert (listed["total"], listed["items"]) == (1, [shown])
    assert (await stack.get("tess", CLIENTS, params={"q": "Quay Offices"})).json()["total"] == 0
    everything = await stack.get("tess", CLIENTS, params={"page_size": 200})
    assert all("notes" not in item for item in everything.json()["items"])
    assert tag not in everything.text.replace(f"{tag} Harbour Dental", "")

    # Another technician sees neither; the office sees both, notes included.
    assert (await stack.get("tom", f"{CLIENTS}/{theirs['id']}")).status_code == 404
    assert (await stack.get("tom", CLIENTS, params={"q": tag})).json()["total"] == 0
    office = (await stack.get("olga", CLIENTS, params={"q": tag})).json()
    assert office["total"] == 2 and {c["notes"] for c in office["items"]} == {
        secret,
        f"other notes {tag}",
    }


# --- reassignment -------------------------------------------------------------------------------


async def test_a_reassigned_job_is_gone_for_the_technician_it_was_taken_from(
    stack: Stack,
) -> None:
    client = await stack.new_client()
    slug = await _scheduled_for(stack, "tess", client["id"])
    job = f"/api/v1/jobs/{slug}"
    # She works on it: she reads it and adds a note (so she authored an event on it).
    assert (await stack.get("tess", job)).status_code == 200
    await drive(stack, slug, [("tess", "note_added", {"text": "Breaker panel checked"})])

    await drive(stack, slug, [("olga", "job_scheduled", {"technician": "tom", **window(3)})])
    timeline = (await stack.get("olga", job)).json()["timeline"]

    assert api_error(await stack.get("tess", job), 404)["code"] == "not_found"
    refused = await stack.event("tess", slug, "note_added", text="Still mine?")
    assert api_error(refused, 404)["code"] == "not_found"
    assert (await stack.get("tess", "/api/v1/jobs", params={"q": slug})).json()["total"] == 0
    assert (await stack.get("tess", f"{CLIENTS}/{client['id']}")).status_code == 404
    assert (await stack.get("olga", job)).json()["timeline"] == timeline  # nothing was added

    # The technician it went to has it, client included.
    assert (await stack.get("tom", job)).status_code == 200
    assert (await stack.get("tom", f"{CLIENTS}/{client['id']}")).status_code == 200
    assert (await stack.event("tom", slug, "note_added", text="On it")).status_code == 200


async def test_a_visit_reported_incomplete_is_answered_then_leaves_the_technician(
    stack: Stack,
) -> None:
    """`job_incomplete` unassigns the technician who sends it: their own event still gets its
    answer, and the job waits for the office to schedule it again."""
    slug = (await on_site(stack))["slug"]
    reported = await stack.event("tess", slug, "job_incomplete", reason="wrong_parts", notes="x")
    assert reported.status_code == 200, reported.text
    assert reported.json()["stage"] == "awaiting_parts" and reported.json()["schedule"] is None
    assert api_error(await stack.get("tess", f"/api/v1/jobs/{slug}"), 404)["code"] == "not_found"


# --- the customer's contact ---------------------------------------------------------------------


async def test_a_technician_cannot_change_where_the_customers_messages_go(stack: Stack) -> None:
    email = f"{_tag()}@example.com"
    job = await on_site(stack, email=email, phone="+15550100001")
    slug = job["slug"]
    before = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()

    for change in ({"email": "attacker@example.com"}, {"phone": "+15550666666"}):
        refused = await stack.event("tess", slug, "contact_updated", **change)
        error = api_error(refused, 403, "contact_updated", "office", "note_added")
        assert error["code"] == "role_not_allowed"
        assert "contact_updated" not in error["allowed_events"]

    after = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    assert after["client"] == before["client"] and after["client"]["email"] == email
    assert after["timeline"] == before["timeline"]
    assert (
        "contact_updated"
        not in (await stack.get("tess", f"/api/v1/jobs/{slug}")).json()["allowed_events"]
    )

    # The office may.
    changed = await stack.event("olga", slug, "contact_updated", email="new@example.com")
    assert changed.status_code == 200, changed.text
    assert changed.json()["client"]["email"] == "new@example.com"


# --- what reaches the customer ------------------------------------------------------------------


async def test_internal_notes_never_reach_the_customer(stack: Stack) -> None:
    tag = _tag()
    client_note = f"clientnote{tag}"
    job_note = f"jobnote{tag}"
    completion_note = f"technote{tag}"
    internal = (client_note, job_note, completion_note)
    job = await on_site(stack, notes=f"Slow payer {client_note}")
    slug = job["slug"]
    work = f"Replaced the condenser fan motor {tag}"
    await drive(
        stack,
        slug,
        [
            ("tess", "note_added", {"text": f"Tenant was rude {job_note}"}),
            (
                "tess",
                "job_completed",
                {
                    "work_performed": work,
                    "notes": f"Upsell a new unit next visit {completion_note}",
                    "parts_used": [{"sku": "FAN-1", "quantity": "1"}],
                },
            ),
        ],
    )
    [email] = await messages(stack, slug, "closeout")
    view = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
    # The office keeps the technician's notes on the job.
    assert completion_note in view["completion"]["notes"]

    token = view["portal_url"].rsplit("/", 1)[1]
    page = await stack.http.get(f"/portal/{token}")
    assert page.status_code == 200, page.text
    receipt = await stack.http.get(f"/portal/{token}/receipt.pdf")
    assert receipt.status_code == 200
    [attachment] = email["attachments"]
    assert receipt.content == await document(stack, attachment["document_id"])
    receipt_text = flat(pdf_text(receipt.content))

    # What the customer is told: the work performed, everywhere …
    assert work in page.text and work in receipt_text
    # … and no internal note anywhere.
    for note in internal:
        for where, text in (
            ("portal page", page.text),
            ("receipt", receipt_text),
            ("closeout email", f"{email['subject']}\n{email['body']}"),
        ):
            assert note not in text, (note, where)
