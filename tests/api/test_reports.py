"""The reports (issue 10 §5, DESIGN.md §8 `GET /api/v1/reports/{name}[.csv]`) on both databases.

A data set of 90 jobs with known histories (tests/api/reports_data.py: events with the stage each
left the job in, some written before migration 0010, result revisions with their forms, quote
follow-ups by email and SMS, moments on month boundaries that are the previous month in the
company's zone) is written straight into a fresh database of this module's own, so no other
test's jobs count. Each report is asked for with several filters and compared with the answer
computed in plain Python from the same jobs. Then who may read what, bad input, and the CSVs.
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import httpx
import pytest
from temporalio.client import Client as TemporalClient
from temporalio.contrib.pydantic import pydantic_data_converter

from api.app import create_app
from api.users.service import add_token, create_user
from core import settings_store
from core.config import Settings
from models.communications import CommunicationSettings
from tests.api import reports_data as d
from tests.conftest import BACKENDS, migrated_database

REPORTS = "/api/v1/reports"
PEOPLE = {
    "ada": "admin",
    "mia": "manager",
    "olga": "office",
    "sam": "sales",
    "sue": "sales",
    "tess": "technician",
}
PERIODS = [
    d.Period(),
    d.Period(start=date(2026, 3, 1), end=date(2026, 4, 30)),
    d.Period(owner="sam"),
    d.Period(start=date(2026, 2, 1), end=date(2026, 3, 31), owner="sue"),
]


@dataclass
class Reports:
    backend: str
    http: httpx.AsyncClient
    tokens: dict[str, str]
    jobs: list[d.TestJob]

    async def get(self, username: str, path: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[username]}"}
        return await self.http.get(f"{REPORTS}/{path}", params=params, headers=headers)

    async def json(self, path: str, period: d.Period, username: str = "mia") -> dict:
        response = await self.get(username, path, **period.params())
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module", params=BACKENDS)
async def reports(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Reports]:
    path = tmp_path_factory.mktemp("reports") / "reports.db"
    async with migrated_database(request.param, path) as db:
        jobs = d.build(random.Random(10))
        await d.write(db, jobs)
        tokens = {}
        async with db.session() as session:
            for username, role in PEOPLE.items():
                user = await create_user(session, username, role, f"{username}@jobline.test")
                tokens[username] = await add_token(session, user)
            comms = CommunicationSettings(timezone=d.ZONE.key)
            await settings_store.save(session, settings_store.COMMUNICATIONS, comms, "ada")
        # Reports never reach Temporal: a lazy client that never connects.
        temporal = await TemporalClient.connect(
            "127.0.0.1:9", lazy=True, data_converter=pydantic_data_converter
        )
        app = create_app(Settings(environment="test"), db=db, temporal=temporal)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://jobline.test"
            ) as http,
        ):
            yield Reports(request.param, http, tokens, jobs)


def test_the_data_set_has_every_shape_the_reports_count() -> None:
    jobs = d.build(random.Random(10))
    stages = {j.stage for j in jobs}
    assert {"lead", "quote_sent", "closed", "canceled"} <= stages
    assert any(e.type == "emergency_dispatch" for j in jobs for e in j.events)
    assert any(len(j.revisions) > 1 for j in jobs)
    assert any(j.current and j.current.form is d.OLD_NO_SALE_FORM for j in jobs)
    assert any(f.channel == "sms" for j in jobs for f in j.follow_ups)
    assert any(e.stage is None for j in jobs for e in j.events)
    # A moment in April in UTC that is March in New York.
    assert any(
        e.type in ("quote_approved", "emergency_dispatch")
        and d.month(e.at) == "2026-03"
        and e.at.month == 4
        for j in jobs
        for e in j.events
    )


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_pipeline(reports: Reports, period: d.Period) -> None:
    body = await reports.json("pipeline", period)
    expected = d.expected_pipeline(reports.jobs, period)
    assert body["rows"] == expected["rows"]
    assert (body["count"], body["amount"]) == (expected["count"], expected["amount"])
    by_milestone: dict[str, list] = {}
    for row in expected["rows"]:
        cell = by_milestone.setdefault(row["milestone"], [0, Decimal(0)])
        cell[0] += row["count"]
        cell[1] += Decimal(row["amount"])
    assert {m["milestone"]: [m["count"], Decimal(m["amount"])] for m in body["milestones"]} == (
        by_milestone
    )
    assert body["filters"]["owner"] == period.owner
    assert body["timezone"] == "America/New_York"


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_sales(reports: Reports, period: d.Period) -> None:
    body = await reports.json("sales", period)
    expected = d.expected_sales(reports.jobs, period)
    got = {
        (r["month"], r["owner"]): [
            r["approved_count"],
            Decimal(r["contract_amount"]),
            r["sale_count"],
            Decimal(r["sale_amount"]),
        ]
        for r in body["rows"]
    }
    assert got == {k: [v[0], Decimal(v[1]), v[2], Decimal(v[3])] for k, v in expected.items()}
    assert body["approved_count"] == sum(v[0] for v in expected.values())
    assert Decimal(body["sale_amount"]) == sum((v[3] for v in expected.values()), Decimal(0))
    months = [m["month"] for m in body["months"]]
    assert months == sorted(months) and set(months) >= {k[0] for k in expected}
    if period.start:  # every month of the period, empty ones included
        assert months[0] == period.start.strftime("%Y-%m")
        assert months[-1] == period.end.strftime("%Y-%m")  # type: ignore[union-attr]


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_conversion(reports: Reports, period: d.Period) -> None:
    body = await reports.json("conversion", period)
    expected = d.expected_conversion(reports.jobs, period)
    got = {
        r["owner"]: (r["created"], r["approved"], r["closed"], r["canceled"]) for r in body["rows"]
    }
    assert got == expected
    created, approved, closed = (sum(v[i] for v in expected.values()) for i in range(3))
    total = body["total"]
    assert (total["created"], total["approved"], total["closed"]) == (created, approved, closed)
    assert total["approval_rate"] == pytest.approx(approved / created, abs=1e-4)
    assert total["close_rate"] == pytest.approx(closed / created, abs=1e-4)
    assert total["approved_close_rate"] == pytest.approx(closed / approved, abs=1e-4)


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_loss_reasons(reports: Reports, period: d.Period) -> None:
    body = await reports.json("loss-reasons", period)
    counts, no_sales, cancels = d.expected_loss_reasons(reports.jobs, period)
    assert {(r["source"], r["field"], r["reason"]): r["count"] for r in body["rows"]} == counts
    assert (body["no_sale_count"], body["canceled_count"]) == (no_sales, cancels)
    labels = {r["field"]: r["label"] for r in body["rows"] if r["source"] == "no_sale"}
    # A field's label is the one of the latest submission that had it.
    current = [
        j.current
        for j in reports.jobs
        if j.current and j.current.type == "no_sale" and period.owns(j)
        if period.has(j.current.submitted_at)
    ]
    if current:
        latest = max(current, key=lambda r: r.submitted_at)
        assert labels["loss_reason"] == latest.form[0]["label"]


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_time_in_stage(reports: Reports, period: d.Period) -> None:
    body = await reports.json("time-in-stage", period)
    now = datetime.now(UTC)
    expected = d.expected_time_in_stage(reports.jobs, period, now)
    assert [r["stage"] for r in body["rows"]] == d.OPEN_STAGES
    for row in body["rows"]:
        visits, still, median, p90 = expected[row["stage"]]
        assert (row["visits"], row["open_visits"]) == (visits, still), row
        # Open visits run to "now", a moment apart in the service and here.
        for got, want in ((row["median_hours"], median), (row["p90_hours"], p90)):
            assert (got is None) == (want is None), row
            if want is not None:
                assert got == pytest.approx(want, abs=0.02), row


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_stuck(reports: Reports, period: d.Period) -> None:
    body = await reports.json("stuck", period)
    expected = d.expected_stuck(reports.jobs, period)
    assert [r["slug"] for r in body["rows"]] == [j.slug for j in expected]
    assert body["total"] == len(expected)
    now = datetime.now(UTC)
    for row, job in zip(body["rows"], expected, strict=True):
        assert row["reasons"] == d.reasons_of(job)
        assert (row["stage"], row["waiting_on"], row["owner"]) == (
            job.stage,
            job.waiting_on,
            job.owner,
        )
        assert datetime.fromisoformat(row["stage_entered_at"]) == job.stage_entered_at
        hours = (now - job.stage_entered_at).total_seconds() / 3600
        assert row["hours_in_stage"] == pytest.approx(hours, abs=0.02)
    by_reason = {r["reason"]: r["count"] for r in body["by_reason"]}
    for reason in by_reason:
        assert by_reason[reason] == sum(reason in d.reasons_of(j) for j in expected)


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_follow_ups(reports: Reports, period: d.Period) -> None:
    body = await reports.json("follow-ups", period)
    expected = d.expected_follow_ups(reports.jobs, period)
    keys = ("sent", "quotes", "approved", "declined", "canceled", "waiting")
    got = {(r["month"], r["owner"]): {k: r[k] for k in keys if r[k]} for r in body["rows"]}
    assert got == {k: dict(v) for k, v in expected.items()}
    assert body["sent"] == sum(v["sent"] for v in expected.values())
    assert (
        body["quotes"] == body["approved"] + body["declined"] + body["canceled"] + body["waiting"]
    )


@pytest.mark.parametrize("period", PERIODS, ids=str)
async def test_resulting(reports: Reports, period: d.Period) -> None:
    body = await reports.json("resulting", period)
    expected = d.expected_resulting(reports.jobs, period)
    assert {t["type"]: [t["count"], Decimal(t["amount"])] for t in body["totals"]} == (
        expected["totals"]
    )
    assert [(j["slug"], j["revisions"]) for j in body["resubmitted_jobs"]] == expected[
        "resubmitted"
    ]
    assert all(j["resubmissions"] == j["revisions"] - 1 for j in body["resubmitted_jobs"])
    assert body["resubmitted_job_count"] == len(expected["resubmitted"])
    assert {u["user"]: (u["submissions"], u["resubmissions"]) for u in body["by_user"]} == (
        expected["by_user"]
    )
    completion = {
        (f["type"], f["key"]): (f["results"], f["filled"]) for f in body["field_completion"]
    }
    assert completion == expected["completion"]
    for f in body["field_completion"]:
        assert f["rate"] == pytest.approx(f["filled"] / f["results"], abs=1e-4)
    assert sorted(j["slug"] for j in body["unresulted"]) == expected["unresulted"]
    assert body["unresulted_count"] == len(expected["unresulted"])


@pytest.mark.parametrize("name", d.NAMES)
async def test_a_period_with_nothing_in_it(reports: Reports, name: str) -> None:
    """No moment at all after `from`: empty tables (every open stage with zeros), not an error."""
    for params in ({"from": "2031-01-01"}, {"from": "2031-01-01", "to": "2031-02-28"}):
        response = await reports.get("mia", name, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        for table in ("rows", "unresulted", "resubmitted_jobs", "by_user", "field_completion"):
            for row in body.get(table, []):
                assert not any(row.get(k) for k in ("count", "visits", "sent", "approved_count")), (
                    row
                )
        csv_response = await reports.get("mia", f"{name}.csv", **params)
        assert csv_response.status_code == 200


# --- who reads what ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pipeline", "stuck", "resulting"])
async def test_office_and_technicians_may_not_read_reports(reports: Reports, name: str) -> None:
    for username in ("olga", "tess"):
        for path in (name, f"{name}.csv"):
            response = await reports.get(username, path)
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "forbidden"
    anonymous = await reports.http.get(f"{REPORTS}/{name}")
    assert anonymous.status_code == 401


async def test_sales_read_their_own_jobs_only(reports: Reports) -> None:
    own = await reports.json("conversion", d.Period(), username="sam")
    assert own["filters"]["owner"] == "sam"
    assert own == {
        **await reports.json("conversion", d.Period(owner="sam"), username="mia"),
        "generated_at": own["generated_at"],
    }
    same = await reports.get("sam", "pipeline", owner="sam")
    assert same.status_code == 200
    other = await reports.get("sam", "pipeline", owner="sue")
    assert other.status_code == 403
    assert "own" in other.json()["error"]["message"]
    csv_other = await reports.get("sam", "sales.csv", owner="sue")
    assert csv_other.status_code == 403
    admin = await reports.get("ada", "pipeline", owner="sue")
    assert admin.status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-13-01"},
        {"from": "yesterday"},
        {"to": "20260301"},
        {"from": "1999-12-31"},
        {"to": "2101-01-01"},
        {"from": "2026-05-01", "to": "2026-04-30"},
        {"owner": "x" * 65},
        {"owner": "sam\x00"},
    ],
    ids=str,
)
async def test_bad_filters_are_422(reports: Reports, params: dict[str, str]) -> None:
    for path in ("sales", "time-in-stage.csv"):
        response = await reports.get("mia", path, **params)
        assert response.status_code == 422, (path, params, response.text)
        assert response.json()["error"]["code"] in ("invalid", "validation_error")


async def test_an_unknown_report_or_table(reports: Reports) -> None:
    assert (await reports.get("mia", "forecast")).status_code == 404
    bad_table = await reports.get("mia", "resulting.csv", table="nope")
    assert bad_table.status_code == 422
    assert "unresulted" in bad_table.json()["error"]["message"]


# --- CSV -----------------------------------------------------------------------------------------


def _parse(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_csv_has_the_json_rows(reports: Reports) -> None:
    period = d.Period(start=date(2026, 2, 1), end=date(2026, 5, 31))
    body = await reports.json("pipeline", period)
    response = await reports.get("mia", "pipeline.csv", **period.params())
    disposition = response.headers["content-disposition"]
    assert disposition.startswith(
        'attachment; filename="jobline-pipeline-'
    ) and disposition.endswith('.csv"')
    rows = _parse(response)
    assert rows[0] == ["Stage", "Milestone", "Jobs", "Amount"]
    assert rows[1:] == [
        [r["stage"], r["milestone"], str(r["count"]), r["amount"]] for r in body["rows"]
    ]

    sales = await reports.json("sales", period)
    months = _parse(await reports.get("mia", "sales.csv", table="months", **period.params()))
    assert months[0][0] == "Month" and len(months) == len(sales["months"]) + 1
    assert [m[0] for m in months[1:]] == [m["month"] for m in sales["months"]]

    conversion = await reports.json("conversion", d.Period())
    rows = _parse(await reports.get("mia", "conversion.csv"))
    assert len(rows) == len(conversion["rows"]) + 2
    assert rows[-1][:2] == ["(all owners)", str(conversion["total"]["created"])]

    for name, table, key in (
        ("stuck", None, "rows"),
        ("time-in-stage", None, "rows"),
        ("follow-ups", None, "rows"),
        ("resulting", "unresulted", "unresulted"),
        ("resulting", "field-completion", "field_completion"),
        ("resulting", "users", "by_user"),
        ("resulting", "resubmitted-jobs", "resubmitted_jobs"),
    ):
        json_body = await reports.json(name, d.Period())
        extra = {"table": table} if table else {}
        rows = _parse(await reports.get("mia", f"{name}.csv", **extra))
        assert len(rows) == len(json_body[key]) + 1, (name, table)


async def test_csv_cells_never_run_as_formulas(reports: Reports) -> None:
    rows = _parse(await reports.get("mia", "loss-reasons.csv"))
    reasons = [row[3] for row in rows[1:]]
    assert '\'=HYPERLINK("http://x")' in reasons
    assert not any(r.startswith(("=", "+", "-", "@")) for r in reasons)
    assert "Too expensive" in reasons and " Too expensive " not in reasons  # trimmed, counted once
    stuck = _parse(await reports.get("mia", "stuck.csv"))
    titles = {row[2] for row in stuck[1:]}
    assert "=1+2" not in titles
    if any(j.title == "=1+2" for j in d.expected_stuck(reports.jobs, d.Period())):
        assert "'=1+2" in titles
