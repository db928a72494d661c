"""Job resulting over the HTTP API (issue 10 §1-3), on both databases, with the real worker:
submitting, resubmitting (every revision kept), the PDF and the email of each, results on
finished jobs, every refusal changing nothing, retries, and the settings' dry run."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import col, select

from api.settings.service import sample_job
from models.tables import Job, OutboxMessage
from tests.activities.test_documents import pdf_text
from tests.api.journeys import quoted
from tests.api.settings import RESULTING, RESULTING_ON, api_error, put, resulting_settings
from tests.conftest import Stack

SALE = {"type": "sale", "fields": {"sale_amount": "12450", "financing": True, "notes": "Signed"}}
NO_SALE = {"type": "no_sale", "fields": {"loss_reason": "Price", "competitor_price": "9800.00"}}


async def result_messages(stack: Stack, slug: str, count: int) -> list[OutboxMessage]:
    """The job's result emails, once `count` of them are there (they are queued just after the
    answer, with the PDF)."""
    for _ in range(200):
        async with stack.db.session() as session:
            rows = list(
                (
                    await session.exec(
                        select(OutboxMessage)
                        .where(OutboxMessage.job_slug == slug, OutboxMessage.purpose == "result")
                        .order_by(col(OutboxMessage.id))
                    )
                ).all()
            )
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} result email(s) of {slug} never came; found {len(rows)}")


async def submit(stack: Stack, slug: str, body: dict[str, Any], user: str = "sam", **headers: str):
    return await stack.http.post(
        f"/api/v1/jobs/{slug}/result", headers={**stack.auth(user), **headers}, json=body
    )


async def test_a_result_is_recorded_emailed_and_printed_and_a_resubmission_keeps_the_first(
    stack: Stack,
) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        first = await submit(stack, slug, SALE)
        assert first.status_code == 201, first.text
        answer = first.json()
        assert answer["current"]["revision"] == 1 and answer["current"]["type"] == "sale"
        assert answer["current"]["fields"] == {
            "sale_amount": "12450.00",
            "financing": True,
            "notes": "Signed",
        }
        assert answer["current"]["labels"]["sale_amount"] == "Sale amount"
        assert answer["current"]["submitted_by"] == "sam"

        # Read-your-writes: the job view and the list show it at once.
        job = (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()
        assert job["result"]["revision"] == 1 and job["result"]["type"] == "sale"
        listed = (await stack.get("olga", "/api/v1/jobs", params={"q": slug})).json()["items"]
        assert [(i["slug"], i["result_type"]) for i in listed] == [(slug, "sale")]

        (email,) = await result_messages(stack, slug, 1)
        assert email.to == "sales@example.com" and email.channel == "email"
        assert "resulted: Sale" in email.subject and "12,450.00" in email.body
        assert len(email.attachments) == 1

        second = await submit(stack, slug, NO_SALE, user="mia")
        assert second.status_code == 201, second.text
        result = (await stack.get("olga", f"/api/v1/jobs/{slug}/result")).json()
        assert [r["revision"] for r in result["revisions"]] == [1, 2]
        assert [r["type"] for r in result["revisions"]] == ["sale", "no_sale"]
        assert result["current"]["revision"] == 2 and result["current"]["submitted_by"] == "mia"
        assert result["revisions"][0]["fields"]["sale_amount"] == "12450.00"  # kept as it was

        emails = await result_messages(stack, slug, 2)
        assert len(emails) == 2
        assert "revision 2, replaces 1" in emails[1].subject
        assert set(emails[1].to.split(", ")) == {"sales@example.com", "manager@example.com"}

        # The current PDF is revision 2's; ?revision=1 gives the first.
        for _ in range(100):
            current = await stack.get("olga", f"/api/v1/jobs/{slug}/result/document.pdf")
            if current.status_code != 503:
                break
            await asyncio.sleep(0.05)
        assert current.status_code == 200 and current.headers["content-type"] == "application/pdf"
        text = pdf_text(current.content)
        assert "No Sale" in text and "Why we lost it" in text and "Price" in text
        older = await stack.get("olga", f"/api/v1/jobs/{slug}/result/document.pdf?revision=1")
        assert older.status_code == 200
        old_text = pdf_text(older.content)
        assert "Sale amount" in old_text and "$12,450.00" in old_text
        missing = await stack.get("olga", f"/api/v1/jobs/{slug}/result/document.pdf?revision=3")
        api_error(missing, 404, "revision 3")


async def test_a_canceled_job_is_resulted_after_its_workflow_has_finished(stack: Stack) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        canceled = await stack.event("mia", slug, "job_canceled", reason="Went elsewhere")
        assert canceled.status_code == 200, canceled.text
        handle = stack.temporal.get_workflow_handle(f"job-{slug}")
        await asyncio.wait_for(handle.result(), timeout=30)  # the job's workflow is done

        response = await submit(stack, slug, NO_SALE)
        assert response.status_code == 201, response.text
        again = await submit(stack, slug, {**NO_SALE, "fields": {"loss_reason": "Timing"}})
        assert again.status_code == 201, again.text
        result = (await stack.get("olga", f"/api/v1/jobs/{slug}/result")).json()
        assert [r["fields"]["loss_reason"] for r in result["revisions"]] == ["Price", "Timing"]
        assert len(await result_messages(stack, slug, 2)) == 2


async def test_a_retry_with_the_same_key_records_one_revision(stack: Stack) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        key = {"Idempotency-Key": f"result-{uuid.uuid4()}"}
        first, second = await asyncio.gather(
            submit(stack, slug, SALE, **key), submit(stack, slug, SALE, **key)
        )
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        result = (await stack.get("olga", f"/api/v1/jobs/{slug}/result")).json()
        assert [r["revision"] for r in result["revisions"]] == [1]
        other = await submit(stack, slug, NO_SALE, **key)
        api_error(other, 422, "different request")
        await asyncio.sleep(0.3)
        assert len(await result_messages(stack, slug, 1)) == 1


# Each refusal names what is wrong and changes nothing.
REFUSED = [
    ({"type": "sale", "fields": {}}, "Sale amount (sale_amount) is required"),
    ({"type": "sale", "fields": {"sale_amount": "lots"}}, "must be an amount of money"),
    ({"type": "sale", "fields": {"sale_amount": "10", "financing": "yes"}}, "true or false"),
    ({"type": "no_sale", "fields": {"loss_reason": "Weather"}}, "'Weather' is not one of"),
    ({"type": "no_sale", "fields": {"loss_reason": "Price", "mood": "x"}}, "unknown"),
    (
        {"type": "no_sale", "fields": {"loss_reason": "Price", "follow_up_on": "soon"}},
        "must be a date",
    ),
]


async def test_a_bad_result_is_refused_naming_the_field(stack: Stack) -> None:
    async with resulting_settings(stack):
        slug = await quoted(stack)
        for body, named in REFUSED:
            api_error(await submit(stack, slug, body), 422, named)
        result = (await stack.get("olga", f"/api/v1/jobs/{slug}/result")).json()
        assert result["revisions"] == [] and result["current"] is None


async def test_who_may_result_and_when(stack: Stack) -> None:
    slug = await quoted(stack)
    api_error(await submit(stack, slug, SALE), 409, "turned off")  # resulting is off by default
    async with resulting_settings(stack):
        api_error(await submit(stack, slug, SALE, user="tess"), 404)  # not her job
        api_error(await submit(stack, "nosuchjob", SALE), 404)
        bad_type = await submit(stack, slug, {"type": "maybe", "fields": {}})
        assert bad_type.status_code == 422
        api_error(await stack.get("olga", f"/api/v1/jobs/{slug}/result/document.pdf"), 404)
        no_token = await stack.http.get(f"/api/v1/jobs/{slug}/result")
        assert no_token.status_code == 401


# --- settings ---------------------------------------------------------------------------------


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    import copy

    settings = copy.deepcopy(RESULTING_ON)
    target: Any = settings
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return settings


_DELETE = object()
SALE_FIELDS = RESULTING_ON["types"]["sale"]["fields"]
BAD_SETTINGS = [
    (("types", "sale", "fields"), [], "at least 1"),
    (("types", "no_sale", "recipients"), [], "no recipients"),
    (("types", "sale", "recipients"), ["not-an-address"], "not an email address"),
    (("types", "sale", "fields"), [SALE_FIELDS[0], SALE_FIELDS[0]], "keys are unique"),
    (("types", "sale", "fields"), [{**SALE_FIELDS[0], "label": ""}], "at least 1 character"),
    (
        ("types", "no_sale", "fields"),
        [{"key": "why", "label": "Why", "type": "dropdown", "options": ["Price"]}],
        "at least two options",
    ),
    (("types", "sale", "pattern"), "fancy", "unknown pattern"),
    (("types", "sale", "fields"), [{**SALE_FIELDS[0], "type": "colour"}], "type"),
    (("unresulted_after_days",), 0, "greater than or equal to 1"),
]


@pytest.mark.parametrize(("path", "value", "named"), BAD_SETTINGS)
async def test_bad_settings_are_refused_naming_the_problem(
    stack: Stack, path: tuple[Any, ...], value: Any, named: str
) -> None:
    before = (await stack.get("ada", RESULTING)).json()
    response = await put(stack, RESULTING, _changed(path, value))
    error = api_error(response, 422)
    assert named in str(error), error
    assert (await stack.get("ada", RESULTING)).json() == before


async def test_only_admins_change_the_settings_and_everyone_reads_them(stack: Stack) -> None:
    api_error(await put(stack, RESULTING, RESULTING_ON, username="mia"), 403, "admin")
    for user in ("mia", "olga", "sam", "tess"):
        assert (await stack.get(user, RESULTING)).status_code == 200
    # Off, recipients may wait: an admin can save the fields first.
    off = _changed(("enabled",), False)
    off["types"]["sale"]["recipients"] = []
    async with resulting_settings(stack, off):
        assert (await stack.get("ada", RESULTING)).json()["types"]["sale"]["recipients"] == []


async def test_the_dry_run_results_a_sample_job_into_the_outbox_only(stack: Stack) -> None:
    api_error(await stack.post("mia", f"{RESULTING}/dry-run"), 403)
    response = await stack.post("ada", f"{RESULTING}/dry-run", RESULTING_ON)
    assert response.status_code == 200, response.text
    answer = response.json()
    names = [c["name"] for c in answer["checks"]]
    assert answer["ok"] is True, answer
    for expected in (
        "Sale: required fields are enforced",
        "No Sale: required fields are enforced",
        "Sale: a filled-in result is accepted",
        "No Sale: the email is written",
        "A resubmission replaces the current result and keeps the earlier ones",
    ):
        assert expected in names, names
    async with stack.db.session() as session:
        captured = (
            await session.exec(
                select(OutboxMessage).where(col(OutboxMessage.subject).startswith("[Dry run]"))
            )
        ).all()
    assert captured and all(m.status == "captured" and m.job_slug is None for m in captured)
    assert all(m.attachments for m in captured)

    # What would break is named: resulting off, a type with no required field.
    loose = _changed(("enabled",), False)
    loose["types"]["sale"]["fields"] = [{"key": "notes", "label": "Notes", "type": "text"}]
    loose["types"]["sale"]["recipients"] = []
    answer = (await stack.post("ada", f"{RESULTING}/dry-run", loose)).json()
    failed = {c["name"]: c["detail"] for c in answer["checks"] if not c["ok"]}
    assert answer["ok"] is False
    assert "Resulting is turned on" in failed and "Sale: has recipients" in failed
    # The sample job (api/settings/service.sample_job) is in no list, and no job at all.
    sample = sample_job(ZoneInfo("UTC")).slug
    listed = (await stack.get("olga", "/api/v1/jobs", params={"q": sample})).json()
    assert listed["total"] == 0
    api_error(await stack.get("olga", f"/api/v1/jobs/{sample}"), 404)


async def test_the_job_list_flags_and_filters_unresulted_jobs(stack: Stack) -> None:
    """The flag itself is the resulting workflow's (tests/workflows/test_unresulted.py); here
    it is set directly, as that workflow's activity sets it."""
    slug, other = await quoted(stack), await quoted(stack)
    async with stack.db.session() as session:
        job = await session.get(Job, slug)
        assert job is not None
        job.unresulted = True
        session.add(job)

    async def listed(**params: str) -> dict[str, bool]:
        response = await stack.get("olga", "/api/v1/jobs", params={"page_size": 200, **params})
        assert response.status_code == 200, response.text
        return {i["slug"]: i["unresulted"] for i in response.json()["items"]}

    flagged = await listed(unresulted="true")
    assert flagged.get(slug) is True and other not in flagged
    assert slug not in await listed(unresulted="false")
    assert (await stack.get("olga", f"/api/v1/jobs/{slug}")).json()["unresulted"] is True
    assert (
        await stack.get("olga", "/api/v1/jobs", params={"unresulted": "maybe"})
    ).status_code == 422
