"""Every list, filter, board and report query reads its large tables through an index, on
PostgreSQL (issue 12 item 4).

The database is seeded with 20,000 jobs (bench/reports.py's rows, with a real job's 3 kB state,
and titles and client names that differ, so a text search is as selective as a real one), their
timelines and stage visits, 20,000 clients, the quotes' follow-ups in the outbox and 20,000
price-book items, then VACUUM ANALYZE'd, as autovacuum would leave it. The planner then chooses
with its real costs and statistics (`enable_seqscan` stays on): a sequential scan found here is
one PostgreSQL would really run. Forcing index scans everywhere instead (`enable_seqscan = off`)
would pass a query with no fitting index through any index read whole, and prove nothing.

Each query is the one the service really sends: the service functions the routes call are
called, each statement they execute is caught with its parameters (a SQLAlchemy event), and
`EXPLAIN (FORMAT JSON)` runs it with the same parameters, twice: with the plan made for those
values (a custom plan), and with the plan made for any value (`plan_cache_mode =
force_generic_plan`), the one a prepared statement may get after five runs.

Every scan of a large table must be an index scan, an index-only scan or a bitmap index scan,
and an index read from end to end must not be filtering out most of the table instead of
seeking it (unless a LIMIT stops it: a page in the index's order). The board's tally and the
reports aggregate every job in their scope by design (a year, the whole open board): where the
planner reads such a table in order because that is cheaper than any index, the same statement
is planned again with `enable_seqscan = off`, and must then read only indexes that narrow it
(or cover it). The plan is printed when a query fails.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from api.clients import service as clients
from api.jobs import service as jobs
from api.jobs.service import ATTENTION, JobFilters
from api.outbox import service as outbox
from api.pricebook import service as pricebook
from api.reports import schemas as report_schemas
from api.reports import service as reports
from bench.reports import EVENT_COLUMNS, JOB_COLUMNS, MESSAGE_COLUMNS, RESULT_COLUMNS, seed_rows
from core.db import Database
from core.stage_visits import backfill
from models.lifecycle import Milestone, Stage
from models.tables import User
from tests.conftest import postgres_seeded_once
from tests.models.test_lifecycle_table import reach

JOBS = 20_000
CLIENTS = 20_000
ITEMS = 20_000
LARGE_TABLES = {
    "jobs",
    "job_events",
    "job_stage_visits",
    "job_results",
    "outbox_messages",
    "clients",
    "pricebook_items",
}
INDEX_SCANS = {"Index Scan", "Index Only Scan", "Bitmap Index Scan"}
WORDS = (
    "boiler", "furnace", "heat pump", "radiator", "thermostat", "water heater", "duct",
    "chimney", "valve", "pipe", "filter", "compressor", "condenser", "fan", "pump",
)  # fmt: skip
PLACES = ("kitchen", "attic", "basement", "garage", "loft", "cellar", "office", "shop")
SURNAMES = (
    "Abbott", "Baker", "Carter", "Dalton", "Ellis", "Foster", "Garcia", "Hughes", "Iqbal",
    "Jensen", "Khan", "Lopez", "Murphy", "Nolan", "Owens", "Patel", "Quinn", "Reyes", "Shaw",
    "Turner",
)  # fmt: skip

MANAGER = User(username="mia", email="m@example.com", role="manager")
OFFICE = User(username="olga", email="o@example.com", role="office")
SALES = User(username="sam", email="s@example.com", role="sales")
TECHNICIAN = User(username="tina", email="t@example.com", role="technician")


def _client_name(n: int) -> str:
    return f"{SURNAMES[n % len(SURNAMES)]} & Sons {n:04d}"


async def seed(url: str, jobs: int = JOBS) -> None:
    """The rows (bench/search.py seeds 100,000 jobs with it)."""
    rng = random.Random(12)
    now = datetime.now(UTC)
    job_rows, event_rows, result_rows, message_rows = seed_rows(jobs, now, rng)
    at = {name: i for i, name in enumerate(JOB_COLUMNS)}
    # A real job's state (3 kB of JSON, stored compressed in the row): the row's width is what
    # the planner weighs a sequential scan by.
    state = reach(Stage.invoiced).state.model_dump_json()
    varied = []
    for i, row in enumerate(job_rows):
        row = list(row)
        client = rng.randrange(CLIENTS)
        row[at["client_id"]] = client + 1
        row[at["client_name"]] = _client_name(client)
        row[at["title"]] = f"{rng.choice(WORDS).title()} in the {rng.choice(PLACES)} {i}"
        row[at["state"]] = state
        varied.append(tuple(row))
    # The technicians' jobs, as the schedule assigns them (the bench's rows have none).
    to = MESSAGE_COLUMNS.index("to")
    subject = MESSAGE_COLUMNS.index("subject")
    messages = []
    for k, row in enumerate(message_rows):
        row = list(row)
        row[to] = f"customer{k}@example.com"
        row[subject] = f"Following up on your quote {row[1]}"
        messages.append(tuple(row))
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.copy_records_to_table(
            "clients",
            columns=["name", "email", "phone", "tier", "address", "notes", "created_at",
                     "updated_at"],
            records=[
                (
                    _client_name(n),
                    f"{SURNAMES[n % len(SURNAMES)].lower()}{n}@example.com",
                    f"555-{n:05d}-{rng.randrange(10_000):04d}",
                    rng.choice(("standard", "standard", "standard", "gold", "government")),
                    f"{n} High Street",
                    "",
                    now,
                    now,
                )
                for n in range(CLIENTS)
            ],
        )  # fmt: skip
        for table, columns, rows in (
            ("jobs", JOB_COLUMNS, varied),
            ("job_events", EVENT_COLUMNS, event_rows),
            ("job_results", RESULT_COLUMNS, result_rows),
            ("outbox_messages", MESSAGE_COLUMNS, messages),
        ):
            await connection.copy_records_to_table(table, records=rows, columns=columns)
        await connection.execute(
            "UPDATE jobs SET assigned_tech = (ARRAY['tina', 'theo', 'tom', 'tara'])"
            "[1 + abs(hashtext(slug)) % 4] WHERE stage IN ('scheduled', 'in_progress', "
            "'awaiting_parts', 'completed', 'invoiced', 'verified', 'closed')"
        )
        await connection.copy_records_to_table(
            "pricebook_items",
            columns=["sku", "name", "description", "unit_price", "taxable", "category", "active",
                     "created_at", "updated_at"],
            records=[
                (
                    f"SKU-{n:05d}",
                    f"{rng.choice(WORDS).title()} part {n}",
                    "",
                    Decimal(rng.randint(1, 2000)),
                    True,
                    rng.choice(("parts", "labour", "equipment", "")),
                    rng.random() > 0.1,
                    now,
                    now,
                )
                for n in range(ITEMS)
            ],
        )  # fmt: skip
    finally:
        await connection.close()
    db = Database(url)
    try:
        async with db.engine.begin() as engine_connection:
            await engine_connection.run_sync(backfill)
    finally:
        await db.dispose()
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


@pytest.fixture(scope="module")
async def seeded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    # Every test here only reads (EXPLAIN): the workers share one seed.
    async with postgres_seeded_once(tmp_path_factory, "query_plans", seed) as db:
        yield db


# --- the queries, as the services send them --------------------------------------------------

Call = Callable[[Any], Awaitable[object]]


def _job_filters() -> dict[str, JobFilters]:
    cases = {
        "no filter": JobFilters(),
        "open only": JobFilters(open_only=True),
        "stage": JobFilters(stage=Stage.quote_sent.value),
        "milestone": JobFilters(milestone=Milestone.approved.value),
        "client": JobFilters(client_id=17),
        "text": JobFilters(q="furnace in the loft"),
        "text with wildcards": JobFilters(q="50%_off"),
        "client name": JobFilters(q="Patel & Sons 0015"),
        "slug": JobFilters(q="b00004d2"),
        "number": JobFilters(q="1042"),
        "stuck": JobFilters(stuck=True),
        "unresulted": JobFilters(unresulted=True),
        "owner": JobFilters(owner="sue"),
        "technician": JobFilters(technician="tom"),
        "waiting on": JobFilters(waiting_on="parts"),
        "open, one owner": JobFilters(open_only=True, owner="sam"),
    }
    for kind in ATTENTION:
        cases[f"attention {kind}"] = JobFilters(attention=kind)
    return cases


def _calls() -> dict[str, Call]:
    calls: dict[str, Call] = {}
    for label, f in _job_filters().items():
        calls[f"job list: {label}"] = lambda s, f=f: jobs.search(s, OFFICE, f, page=3, page_size=50)
    calls["job list: a technician's own"] = lambda s: jobs.search(
        s, TECHNICIAN, JobFilters(), page=1, page_size=50
    )
    calls["job list: a technician's search"] = lambda s: jobs.search(
        s, TECHNICIAN, JobFilters(q="boiler"), page=1, page_size=50
    )
    for label, f in {"open": JobFilters(open_only=True), "all": JobFilters()}.items():
        calls[f"board tally: {label}"] = lambda s, f=f: jobs.board_tally(s, OFFICE, f)
        calls[f"board list: {label}"] = lambda s, f=f: jobs.board_list(
            s, OFFICE, f, page=2, page_size=50, total=JOBS
        )
    calls["board list: a client's name"] = lambda s: jobs.board_list(
        s, OFFICE, JobFilters(q="Patel & Sons 0015"), page=1, page_size=50, total=10
    )
    for milestone in Milestone:
        calls[f"board column: {milestone.value}"] = lambda s, m=milestone.value: jobs.board_column(
            s, OFFICE, JobFilters(open_only=True), m, limit=20, total=JOBS
        )
    calls["board column: a client's name"] = lambda s: jobs.board_column(
        s, OFFICE, JobFilters(q="Patel & Sons 0015"), Milestone.lead.value, limit=20, total=10
    )
    calls["board tally: one owner, stale quotes"] = lambda s: jobs.board_tally(
        s, OFFICE, JobFilters(open_only=True, owner="sam", attention="stale_quote")
    )
    calls["board tally: a technician's"] = lambda s: jobs.board_tally(
        s, TECHNICIAN, JobFilters(open_only=True)
    )

    def client_list(q: str | None, tier: str | None = None, user: User = OFFICE) -> Call:
        return lambda s: clients.search(s, user, q, tier, 2, 50)

    calls["clients: list"] = client_list(None)
    calls["clients: name"] = client_list("hughes & sons 01")
    calls["clients: email"] = client_list("patel15@exa")
    calls["clients: phone"] = client_list("555-00421")
    calls["clients: wildcards"] = client_list("100%_")
    calls["clients: tier"] = client_list(None, "government")
    calls["clients: a technician's"] = client_list("shaw", user=TECHNICIAN)

    def outbox_list(**given: Any) -> Call:
        filters = {"job_slug": None, "channel": None, "purpose": None, "status": None, **given}
        return lambda s: outbox.search(s, page=2, page_size=50, **filters)

    calls["outbox: list"] = outbox_list()
    calls["outbox: job"] = outbox_list(job_slug="b00004d2")
    calls["outbox: channel"] = outbox_list(channel="sms")
    calls["outbox: purpose"] = outbox_list(purpose="quote_follow_up")
    calls["outbox: status"] = outbox_list(status="failed")
    calls["outbox: recipient"] = outbox_list(q="customer1234@")
    calls["outbox: subject"] = outbox_list(q="quote b00004d")
    calls["outbox: wildcards"] = outbox_list(q="50%_off")

    calls["price book: list"] = lambda s: pricebook.search(s, None, None, None, 2, 50)
    calls["price book: name"] = lambda s: pricebook.search(
        s, "heat pump part 12", None, None, 1, 50
    )
    calls["price book: sku"] = lambda s: pricebook.search(s, "sku-0123", None, None, 1, 50)
    calls["price book: category"] = lambda s: pricebook.search(s, None, "labour", True, 1, 50)
    calls["price book: wildcards"] = lambda s: pricebook.search(s, "10%_", None, None, 1, 50)
    calls["price book: quote builder"] = lambda s: pricebook.search_items(s, "valve part 3")

    today = datetime.now(UTC).date()
    periods = {
        "year": report_schemas.ReportFilters(),
        "quarter": report_schemas.ReportFilters(start=today - timedelta(days=91), end=today),
        "owner": report_schemas.ReportFilters(owner="sam"),
    }
    for name, compute in reports.REPORTS.items():
        for label, filters in periods.items():
            calls[f"report {name}: {label}"] = lambda s, c=compute, f=filters: c(s, f, MANAGER)
        calls[f"report {name}: a seller's"] = lambda s, c=compute: c(
            s, report_schemas.ReportFilters(start=date(today.year, 1, 1)), SALES
        )
    return calls


CALLS = _calls()


# --- the plans --------------------------------------------------------------------------------


# Nodes that read all their input before giving a row: a scan below one of them is read to its
# end even under a LIMIT (an incremental sort is not one: it sorts each run of equal keys).
BLOCKING = {"Sort", "Aggregate", "Hash", "Materialize", "WindowAgg", "SetOp"}


def _scans(
    plan: dict[str, Any], limited: bool = False
) -> list[tuple[str, str, str, str, str, float, bool]]:
    """(node type, relation, index, index condition, filter, rows kept, stopped by a LIMIT) of
    every scan in the plan (a bitmap index scan names no relation: its bitmap heap scan does)."""
    found = []
    if "Relation Name" in plan or "Index Name" in plan:
        found.append(
            (
                plan["Node Type"],
                plan.get("Relation Name", ""),
                plan.get("Index Name", ""),
                plan.get("Index Cond", ""),
                plan.get("Filter", ""),
                plan.get("Plan Rows", 0),
                limited,
            )
        )
    if plan["Node Type"] == "Limit":
        limited = True
    elif plan["Node Type"] in BLOCKING:
        limited = False
    for child in plan.get("Plans", []):
        found += _scans(child, limited)
    return found


async def _caught(db: Database, call: Call) -> list[tuple[str, Any]]:
    """The statements `call` executes, with their parameters."""
    statements: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", catch)
    try:
        async with db.session() as session:
            await call(session)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", catch)
    return statements


async def _plan(
    db: Database, statement: str, parameters: Any, mode: str, *, forced: bool = False
) -> dict[str, Any]:
    async with db.engine.connect() as connection:
        await connection.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        if forced:
            await connection.exec_driver_sql("SET enable_seqscan = off")
        explained = await connection.exec_driver_sql(
            f"EXPLAIN (FORMAT JSON) {statement}", parameters
        )
        found = explained.scalar_one()
        await connection.rollback()
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def _read_whole(
    plan: dict[str, Any], db: Catalog, *, covering: bool = False
) -> list[tuple[str, str]]:
    """The scans of large tables that read no index. An index read from end to end counts as a
    table scan too when it filters out most of what it reads (keeps under a quarter of the
    table) instead of seeking it, unless a LIMIT stops it (a list's page, in the index's order)
    or the index is partial (its predicate sought the rows); one that keeps most rows is an
    aggregate of the whole table, or its order. `covering`: an index-only scan read whole is
    fine too (an aggregate over every job, read from a narrow index instead of the rows). A
    bitmap heap scan reads what its bitmap index scans sought."""
    found = []
    for node, table, index, cond, kept_if, kept, limited in _scans(plan):
        if table not in LARGE_TABLES:
            continue
        if node not in INDEX_SCANS | {"Bitmap Heap Scan"}:
            found.append((node, table))
        elif (
            node in INDEX_SCANS
            and not (cond or limited or index in db.partial)
            and not (covering and node == "Index Only Scan")
            and kept_if
            and kept < db.rows[table] / 4
        ):
            found.append((f"{node} of all {index}, keeping {kept:.0f} by {kept_if}", table))
    return found


@dataclass
class Catalog:
    rows: dict[str, float]  # each table's rows, as ANALYZE counted them
    partial: set[str]  # the partial indexes


_CATALOG: list[Catalog] = []


async def _catalog(db: Database) -> Catalog:
    if not _CATALOG:
        async with db.engine.connect() as connection:
            rows = await connection.exec_driver_sql(
                "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r'"
            )
            partial = await connection.exec_driver_sql(
                "SELECT indexrelid::regclass::text FROM pg_index WHERE indpred IS NOT NULL"
            )
            _CATALOG.append(
                Catalog({str(r[0]): float(r[1]) for r in rows.all()}, set(partial.scalars()))
            )
    return _CATALOG[0]


def _whole_set(query: str) -> bool:
    """The board's tally and the reports aggregate every job in their scope by design (a year's
    report, the whole open board): where the planner reads the table in order because that is
    cheaper than any index, an index that narrows each scan must still be there."""
    return query.startswith(("board tally", "report "))


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("query", list(CALLS))
async def test_every_list_filter_board_and_report_query_reads_an_index(
    seeded: Database, query: str, mode: str
) -> None:
    statements = await _caught(seeded, CALLS[query])
    assert statements, f"{query}: no query caught"
    catalog = await _catalog(seeded)
    for statement, parameters in statements:
        plan = await _plan(seeded, statement, parameters, mode)
        read_whole = _read_whole(plan, catalog)
        if read_whole and _whole_set(query):
            plan = await _plan(seeded, statement, parameters, mode, forced=True)
            read_whole = _read_whole(plan, catalog, covering=True)
        assert not read_whole, (
            f"{query} ({mode}) reads {read_whole} without an index:\n{statement}\n"
            f"parameters: {parameters}\n{json.dumps(plan, indent=1)}"
        )


async def test_the_text_searches_read_their_trigram_indexes(seeded: Database) -> None:
    """Not merely some index: each searched text reads its own trigram index."""
    expected = {
        "job list: text": {"ix_jobs_title_trgm", "ix_jobs_client_name_trgm"},
        "clients: email": {
            "ix_clients_name_trgm",
            "ix_clients_email_trgm",
            "ix_clients_phone_trgm",
        },
        "outbox: recipient": {
            "ix_outbox_messages_to_trgm",
            "ix_outbox_messages_subject_trgm",
            "ix_outbox_messages_body_trgm",
        },
        "price book: name": {"ix_pricebook_items_sku_trgm", "ix_pricebook_items_name_trgm"},
    }
    for query, indexes in expected.items():
        statements = await _caught(seeded, CALLS[query])
        for mode in ("force_custom_plan", "force_generic_plan"):
            plans = [await _plan(seeded, s, p, mode) for s, p in statements]
            used = {index for plan in plans for _, _, index, *_ in _scans(plan)}
            assert indexes <= used, (query, mode, used, [json.dumps(p, indent=1) for p in plans])


# A job row carried its whole state (2–4 KB of JSON, ~1.9 KB compressed in the row: 185 MB at
# 100,000 jobs), so whatever read many jobs' rows read their states too: a text search's count,
# the board's and the reports' scans. Migration 0018 keeps the state out of line (in the table's
# TOAST relation), leaving the row its narrow columns. The reports' covering indexes (migration
# 0016) came first; the planner now picks them or the narrow rows by cost.
NARROW_ROW_BYTES = 500  # 2,672 with the state in the row (20,000 jobs)


async def test_a_job_row_keeps_its_state_out_of_line(seeded: Database) -> None:
    async with seeded.engine.connect() as connection:
        jobs_count, heap, toast = (
            await connection.exec_driver_sql(
                "SELECT count(*), pg_relation_size('jobs'), "
                "pg_relation_size((SELECT reltoastrelid FROM pg_class WHERE relname = 'jobs')) "
                "FROM jobs"
            )
        ).one()
        # A column PostgreSQL may move out of line goes there too once the state has (every
        # text over 18 bytes while the row is over the target): only the state may.
        movable = (
            await connection.exec_driver_sql(
                "SELECT attname FROM pg_attribute WHERE attrelid = 'jobs'::regclass "
                "AND attnum > 0 AND NOT attisdropped AND attstorage IN ('x', 'e')"
            )
        ).all()
    assert jobs_count == JOBS
    assert heap / jobs_count < NARROW_ROW_BYTES, (heap, jobs_count)
    assert toast > heap, (heap, toast)  # the states are there, compressed
    assert [name for (name,) in movable] == ["state"]


async def test_the_open_board_seeks_its_open_stages(seeded: Database) -> None:
    """The board (open jobs only) names the open stages, so the index on the stage seeks them:
    `stage NOT IN (closed, canceled)` read every closed job's entry and dropped it (at 100,000
    jobs, 99,000 entries read for 1,000 kept: 27 ms against 2 ms)."""
    statements = await _caught(seeded, CALLS["board tally: open"])
    for statement, parameters in statements:
        plan = await _plan(seeded, statement, parameters, "force_custom_plan")
        scans = [s for s in _scans(plan) if s[1] == "jobs" or s[2].startswith("ix_jobs")]
        assert scans and all("stage" in cond for _, _, _, cond, *_ in scans), json.dumps(plan)


def _nodes(plan: dict[str, Any]) -> list[str]:
    return [plan["Node Type"], *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def _sorted_under_a_limit(plan: dict[str, Any]) -> list[str]:
    """The sorts that choose a LIMITed page (the board re-reads its page's few rows whole and
    sorts those: that sort is above the LIMIT and harmless)."""
    if plan["Node Type"] == "Limit":
        return [n for n in _nodes(plan) if "Sort" in n]
    return [n for child in plan.get("Plans", []) for n in _sorted_under_a_limit(child)]


@pytest.mark.parametrize(
    "query", ["job list: no filter", "job list: owner", "board list: all", "board column: Lead"]
)
async def test_a_list_page_is_read_in_its_order_from_an_index(seeded: Database, query: str) -> None:
    """The lists' order (the time, then the slug) is an index's: a page is read, not sorted. A
    sort of each run of equal times read every job changed at the same instant first (an import:
    thousands of whole rows for a page of 50)."""
    statements = await _caught(seeded, CALLS[query])
    pages = [(s, p) for s, p in statements if "LIMIT" in s.upper() and "count(" not in s]
    assert pages, statements
    for statement, parameters in pages:
        plan = await _plan(seeded, statement, parameters, "force_custom_plan")
        sorts = _sorted_under_a_limit(plan)
        assert not sorts, f"{query} sorts its page: {sorts}\n{json.dumps(plan)}"
