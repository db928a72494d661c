"""The reports page, /reports (issue 10 §5-6), over ASGI on both databases: a manager sees every
section with the numbers of a small data set (tests/api/reports_seed.py, filtered by its own
owner), a sales person only their own jobs, office and technicians a refusal page; a filter that
cannot be read is said so on the page (never a 500); each report's CSV downloads for a signed-in
person as the API's CSV route gives it."""

from __future__ import annotations

import csv
import html
import io
import random
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest

from bench.pages import job_state, write_states
from models.lifecycle import ClientSnapshot, Stage
from tests.api.reports_seed import CANCEL_REASON, Seeded, seed
from tests.api.signed_in import SignIn, new_person, signed_in_fixture  # noqa: F401
from tests.conftest import Stack

SECTIONS = {
    "pipeline": "Pipeline",
    "sales": "Sales by month",
    "conversion": "Conversion",
    "time-in-stage": "Time in stage",
    "loss-reasons": "Loss reasons",
    "stuck": "Stuck jobs",
    "follow-ups": "Follow-ups",
    "resulting": "Resulting",
}
CHARTS = ("chart-pipeline", "chart-sales", "chart-conversion", "chart-time", "chart-loss")


@pytest.fixture(scope="module")
def seeded_holder() -> dict[str, Seeded]:
    return {}


@pytest.fixture
async def data(stack: Stack, seeded_holder: dict[str, Seeded]) -> Seeded:
    """The data set, made once per database (the stack, and so the database, is shared)."""
    if stack.backend not in seeded_holder:
        seeded_holder[stack.backend] = await seed(stack)
    return seeded_holder[stack.backend]


def section(page: str, name: str) -> str:
    """One report's section of the page."""
    found = re.search(rf'<section[^>]* id="{name}".*?</section>', page, re.S)
    assert found, f"no section {name}"
    return found.group(0)


def cells(fragment: str) -> list[list[str]]:
    """The rows of the tables in `fragment`, each a list of its cells' text."""
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", fragment, re.S):
        texts = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
        rows.append([html.unescape(re.sub(r"<[^>]+>", "", t)).strip() for t in texts])
    return rows


def row_of(fragment: str, first: str) -> list[str]:
    matching = [row for row in cells(fragment) if row and row[0] == first]
    assert matching, (first, cells(fragment))
    return matching[0]


async def test_a_manager_sees_every_section_with_the_numbers(
    stack: Stack, signed_in: SignIn, data: Seeded
) -> None:
    manager = await signed_in(username="mia")
    page = await manager.get("/reports", params={"owner": data.seller})
    assert page.status_code == 200, page.text
    text = page.text
    for name, title in SECTIONS.items():
        assert f'<h2 id="{name}-title">{title}</h2>' in section(text, name)
    for chart in CHARTS:
        assert f'<svg class="chart" id="{chart}" role="img"' in text
    assert '<a href="/reports" aria-current="page">Reports</a>' in text
    # The owner picked stays picked; the dates default to the last 12 months.
    assert f'<option value="{data.seller}" selected>' in text
    assert re.search(r'name="from" value="\d{4}-\d{2}-01"', text)

    # Pipeline: the approved job and the quoted one are open, one each, at the quote's total.
    pipeline = section(text, "pipeline")
    assert row_of(pipeline, "All open jobs") == ["All open jobs", "2", "$1,315.00"]
    # Sales: the approved job this month, its Sale result resubmitted at the quote's total.
    sales = section(text, "sales")
    assert row_of(sales, "Total") == ["Total", "1", "$657.50", "1", "$657.50"]
    # Conversion: three leads, one approved, one canceled; the funnel says the same.
    conversion = section(text, "conversion")
    assert row_of(conversion, "Everyone") == ["Everyone", "3", "1", "0", "1", "33%", "0%"]
    assert "1 · 33% of leads" in conversion
    # Loss reasons: the No Sale dropdown and the cancel reason, its markup shown as text.
    loss = section(text, "loss-reasons")
    assert row_of(loss, "No Sale result") == ["No Sale result", "Why we lost it", "Price", "1"]
    assert row_of(loss, "Cancellation")[2] == CANCEL_REASON
    assert "<i>Too pricey</i>" not in text  # escaped in the table and in the chart
    assert html.escape(CANCEL_REASON, quote=False) in loss
    # Time in stage: the stages the jobs passed through, each with a median.
    time_in_stage = section(text, "time-in-stage")
    assert "Lead" in [row[0] for row in cells(time_in_stage)]
    # Stuck: the quoted job, overdue for a result, linked to its page.
    stuck = section(text, "stuck")
    assert f'href="/jobs/{data.quoted["slug"]}"' in stuck
    assert "Not resulted" in stuck
    # Resulting: counts and amounts, the unresulted job linked, resubmissions per job and person,
    # and the optional fields' completion.
    resulting = section(text, "resulting")
    assert row_of(resulting, "Sale") == ["Sale", "1", "$657.50"]
    assert row_of(resulting, "No Sale")[1] == "1"
    assert "Not resulted (1)" in resulting
    assert f'href="/jobs/{data.quoted["slug"]}"' in resulting
    assert "Resubmissions per job (1)" in resulting
    assert f"#{data.approved['number']}" in resulting
    assert row_of(resulting, data.seller) == [data.seller, "3", "1"]
    assert row_of(resulting, "No Sale")  # the completion table names its type too
    completion = resulting.split('id="completion"')[1]
    assert ["No Sale", "Notes", "1", "0", "0%"] in cells(completion)
    assert ["Sale", "Financing", "1", "0", "0%"] in cells(completion)
    # Times are in the company's zone, named.
    assert "Days and months are in" in text

    # Everyone's reports include the other seller's job too.
    everyone = await manager.get("/reports")
    assert everyone.status_code == 200
    assert f'<option value="{data.seller}">' in everyone.text


async def test_a_sales_person_sees_only_their_own(signed_in: SignIn, data: Seeded) -> None:
    other = await signed_in(username=data.other)
    page = await other.get("/reports")
    assert page.status_code == 200, page.text
    assert 'id="f-owner"' not in page.text  # no owner to choose
    assert "Your own jobs." in page.text
    assert '<a href="/reports" aria-current="page">Reports</a>' in page.text
    pipeline = section(page.text, "pipeline")
    assert row_of(pipeline, "All open jobs") == ["All open jobs", "1", "$657.50"]
    assert CANCEL_REASON not in html.unescape(page.text)
    assert data.quoted["slug"] not in page.text
    # Another owner in the URL changes nothing: their own, still.
    asked = await other.get("/reports", params={"owner": data.seller})
    assert asked.status_code == 200
    assert row_of(section(asked.text, "pipeline"), "All open jobs")[1] == "1"
    # The CSV too.
    download = await other.get("/reports/pipeline.csv", params={"owner": data.seller})
    assert download.status_code == 200
    assert sum(int(row["Jobs"]) for row in _csv(download)) == 1


@pytest.mark.parametrize("role", ["office", "technician"])
async def test_others_are_refused_with_a_page(signed_in: SignIn, role: str) -> None:
    person = await signed_in(role)
    for path in ("/reports", "/reports/pipeline.csv"):
        refused = await person.get(path)
        assert refused.status_code == 403, (role, path)
        assert "<h1>Not allowed</h1>" in refused.text
        assert "Reports are for: admin, manager, sales" in refused.text
    board = await person.get("/jobs")
    assert 'href="/reports"' not in board.text  # no link to what they may not read


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "2026-13-01"}, "From: enter a date like 2026-01-31, not &#39;2026-13-01&#39;"),
        ({"to": "yesterday"}, "To: enter a date like 2026-01-31"),
        ({"from": "1066-10-14"}, "From: the date must be from"),
        ({"from": "2026-03-01", "to": "2026-02-01"}, "To: the end of the period must be on"),
        ({"owner": "nobody-at-all"}, "Owner: there is no one called &#39;nobody-at-all&#39;"),
        ({"from": "2026-01-01\x00x"}, "From: enter a date like"),
    ],
)
async def test_a_filter_that_cannot_be_read_is_said_so(
    signed_in: SignIn, params: dict[str, str], message: str
) -> None:
    manager = await signed_in(username="mia")
    page = await manager.get("/reports?" + urlencode(params))
    assert page.status_code == 400, page.text
    assert "These filters cannot be read" in page.text
    assert message in page.text
    # Twice: in the summary (linked to the field) and at the field; the input kept.
    assert page.text.count(message) == 2
    assert '<section class="panel report-section"' not in page.text
    download = await manager.get("/reports/pipeline.csv?" + urlencode(params))
    assert download.status_code == 400
    assert message in download.text


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


async def test_each_report_downloads_as_the_api_gives_it(
    stack: Stack, signed_in: SignIn, data: Seeded
) -> None:
    manager = await signed_in(username="mia")
    page = await manager.get("/reports", params={"owner": data.seller})
    links = re.findall(r'<a href="(/reports/[a-z-]+\.csv\?[^"]+)" download>', page.text)
    assert {re.match(r"/reports/([a-z-]+)\.csv", link).group(1) for link in links} == set(SECTIONS)
    for link in links:
        link = html.unescape(link)
        assert f"owner={data.seller}" in link and re.search(r"from=\d{4}-\d\d-01&to=", link)
        download = await manager.get(link)
        assert download.status_code == 200, (link, download.text)
        assert "attachment;" in download.headers["content-disposition"]
        # The API's CSV for the same report, table and filters: the same file.
        api = await stack.get("mia", link.replace("/reports/", "/api/v1/reports/"))
        assert api.status_code == 200, api.text
        assert download.content == api.content, link
    loss = _csv(await manager.get(f"/reports/loss-reasons.csv?owner={data.seller}"))
    assert {(row["Reason"], row["Count"]) for row in loss} == {("Price", "1"), (CANCEL_REASON, "1")}
    unresulted = _csv(
        await manager.get(f"/reports/resulting.csv?owner={data.seller}&table=unresulted")
    )
    assert [row["Slug"] for row in unresulted] == [data.quoted["slug"]]
    missing = await manager.get("/reports/nothing.csv")
    assert missing.status_code == 404 and "there is no report" in missing.text
    no_table = await manager.get("/reports/pipeline.csv?table=nope")
    assert no_table.status_code == 404 and "has no table" in no_table.text


async def test_dates_left_empty_mean_all_time(signed_in: SignIn, data: Seeded) -> None:
    """The form's dates cleared: no bound either side, and the CSV links say so too (a link
    without dates would mean the default 12 months)."""
    manager = await signed_in(username="mia")
    page = await manager.get("/reports", params={"owner": data.seller, "from": "", "to": ""})
    assert page.status_code == 200, page.text
    assert 'name="from" value=""' in page.text
    assert row_of(section(page.text, "pipeline"), "All open jobs")[1] == "2"
    link = html.unescape(
        re.findall(r'<a href="(/reports/sales\.csv\?[^"]+)" download>', page.text)[0]
    )
    assert "from=&to=" in link
    assert (await manager.get(link)).status_code == 200


async def test_long_lists_show_their_first_rows_and_say_how_many(
    stack: Stack, signed_in: SignIn
) -> None:
    """55 stuck jobs of one owner: the page lists 50 and says the CSV has them all."""
    owner = await new_person(stack, "sales")
    client = await stack.new_client()
    snapshot = ClientSnapshot(id=client["id"], name=client["name"])
    rng, now = random.Random(10), datetime.now(UTC)
    states = [
        job_state(f"r{uuid.uuid4().hex[:10]}", snapshot, Stage.awaiting_parts, now, rng,
                  number=None, stuck=True, owner=owner)
        for _ in range(55)
    ]  # fmt: skip
    await write_states(stack.db, [(state, now) for state in states])
    manager = await signed_in(username="mia")
    page = await manager.get("/reports", params={"owner": owner})  # the last 12 months
    assert page.status_code == 200, page.text
    stuck = section(page.text, "stuck")
    assert stuck.count('<td data-label="Job">') == 50
    assert (
        "The first 50 of 55 here, longest in their stage first; the CSV has all of them." in stuck
    )
    download = await manager.get(f"/reports/stuck.csv?owner={owner}")
    assert len(_csv(download)) == 55
