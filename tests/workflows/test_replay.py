"""Replay every kept history (tests/histories/*.json) against the current JobWorkflow code.

A workflow change that would break a running job (a non-deterministic change without
`workflow.patched` or worker versioning) fails here. The histories come from real runs:
`.venv/bin/python -m tests.histories.capture <scenario>` captures one (see its docstring).

The kept histories must also exercise the whole workflow: replayed with an observer, together they
accept every event type of `models.events.Event` and fire every reminder kind of
`models.reminders.Kind`, take an integration's event by Signal, and continue as new. A new event
type or reminder kind fails here until a captured scenario covers it. And a refused update must
leave no trace: tested against the dev server, by the history's length.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import TypeAdapter
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    Replayer,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from core.db import Database
from core.migrate import upgrade
from core.temporal import workflow_id
from models import events as ev
from models import reminders
from models.lifecycle import Actor, ClientSnapshot, JobState, Reminders, Role
from models.messages import EventRequest, JobInput
from models.tables import Client as ClientRow
from worker import build_worker
from workflows.job import ANSWER_FIRST_QUIET, ANSWER_FIRST_SPREAD, JobWorkflow
from workflows.message_resend import MessageResendWorkflow
from workflows.resulting import JobResultWorkflow
from workflows.runner import workflow_runner

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
# By then a job has settled after its last Update.
SETTLED_S = (ANSWER_FIRST_QUIET + ANSWER_FIRST_SPREAD).total_seconds() + 0.5
# Every lifecycle path that must keep replaying (tests/histories/capture.py SCENARIOS).
SCENARIOS = (
    "happy_path",
    "emergency",
    "canceled",
    "incomplete_rescheduled",
    "sales_approval",
    "parts_signal",
    # Closeout settings with a required field, a webhook, and the documents attached.
    "closeout",
    # On the time-skipping server: two quote follow-ups fire, then approval and cancel.
    "quote_follow_ups",
    # On the time-skipping server: settles after quiet spells, around a signal.
    "settles",
    # Nearly every event type, parts delivered by an integration's Signal, validator refusals.
    "every_event",
    # Emergency dispatch, then canceled.
    "emergency_canceled",
    # A run that continued as new, and the run that carried the job on.
    "continue_as_new",
    "continue_as_new_run2",
    # On the time-skipping server: follow-ups to stale, then stuck; parts overdue, appointment
    # and payment reminders.
    "quote_stale",
    "visit_reminders",
    # Quoted, then canceled: each starts the job's resulting clock (the resulting-clock patch).
    "canceled_resulting",
    # Three options with a discount and tax, declined and then approved online by the customer
    # (signed, choosing one, with the address it came from).
    "quote_online",
    # A request for quote emailed to a supplier, its answer logged against the PO.
    "supplier_request",
)
FINISHED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


def _load(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text())
    started = data["events"][0]
    assert started["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", path.name
    attributes = started["workflowExecutionStartedEventAttributes"]
    assert attributes["workflowType"]["name"] == "JobWorkflow", path.name
    # The workflow id is not in the history itself; every job's id is job-<slug>.
    return WorkflowHistory.from_json(f"replay-{path.stem}", data)


def _replayer(interceptors: Sequence[Interceptor] = ()) -> Replayer:
    return Replayer(
        workflows=[JobWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
        interceptors=interceptors,
    )


def test_every_scenario_has_a_history() -> None:
    found = {path.stem for path in HISTORIES.glob("*.json")}
    assert found, f"no histories under {HISTORIES}"
    missing = sorted(set(SCENARIOS) - found)
    assert not missing, f"missing histories: {missing}; run python -m tests.histories.capture"


@pytest.mark.parametrize("name", SCENARIOS)
async def test_scenario_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    assert path.exists(), f"{path} is missing; run python -m tests.histories.capture"
    history = _load(path)
    # Finished runs only: a history cut short would replay without checking the ending.
    assert history.events[-1].event_type in FINISHED, f"{name}: the run had not finished"
    result = await _replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure!r}"


async def test_all_kept_histories_replay() -> None:
    """Any history kept beside the scenarios (e.g. from an older workflow version) replays too."""
    paths = sorted(HISTORIES.glob("*.json"))
    assert paths, f"no histories under {HISTORIES}"
    failures: dict[str, str] = {}
    replayed = 0

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in paths:
            yield _load(path)

    async with _replayer().workflow_replay_iterator(histories()) as results:
        async for result in results:
            replayed += 1
            if result.replay_failure is not None:
                failures[result.history.workflow_id] = repr(result.replay_failure)
    assert replayed == len(paths)
    assert not failures, failures


# --- what the kept histories exercise ---------------------------------------------------------


def _event_types() -> set[str]:
    """The `type` of every member of the Event union."""
    union, _discriminator = get_args(ev.Event)
    return {member.model_fields["type"].default for member in get_args(union)}


REMINDER_KINDS: set[str] = set(get_args(reminders.Kind))
# How a run shows that a reminder of each kind fired in it: the field of the job's reminders that
# `models.reminders.fired` sets for that kind (nothing else sets them), compared between the state
# the run started from and the state it ended with.
FIRED: dict[str, Callable[[Reminders, Reminders], bool]] = {
    "quote_follow_up": lambda start, end: end.last_follow_up_at != start.last_follow_up_at,
    "quote_stale": lambda start, end: end.quote_stale and not start.quote_stale,
    "appointment_reminder": lambda start, end: (
        end.appointment_reminded_for != start.appointment_reminded_for
    ),
    "parts_overdue": lambda start, end: set(end.parts_overdue_skus) > set(start.parts_overdue_skus),
    "payment_reminder": lambda start, end: (
        end.last_payment_reminder_at != start.last_payment_reminder_at
    ),
    "stuck": lambda start, end: end.stuck_since != start.stuck_since,
}


@dataclass
class Exercised:
    """What one history's run did, as its replay showed it."""

    events: set[str] = field(default_factory=set)
    reminders: set[str] = field(default_factory=set)
    # Event types an integration's `event` Signal brought in and the job applied.
    integration_signals: set[str] = field(default_factory=set)
    carried_over: bool = False  # started from an earlier run's job (continue-as-new)
    continued_as_new: bool = False


# By workflow id (replay-<file stem>), filled in by the observer during a replay.
_EXERCISED: dict[str, Exercised] = {}


def _exercised() -> Exercised:
    return _EXERCISED.setdefault(workflow.info().workflow_id, Exercised())


def _job() -> JobState:
    state: JobState = workflow.instance().job()
    return state


class _ObserveJob(WorkflowInboundInterceptor):
    """Notes the events each run accepts and the reminders it fires, through the workflow's own
    `job` query and the messages it is handed; the workflow itself is replayed unchanged."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        start: JobInput = input.args[0]
        exercised = _exercised()
        exercised.carried_over = start.state is not None
        before = start.state.reminders if start.state is not None else Reminders()
        try:
            result = await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            exercised.continued_as_new = True
            self._reminders_fired(before)
            raise
        self._reminders_fired(before)
        return result

    def _reminders_fired(self, before: Reminders) -> None:
        after = _job().reminders
        _exercised().reminders |= {kind for kind, fired in FIRED.items() if fired(before, after)}

    async def handle_signal(self, input: HandleSignalInput) -> None:
        if input.signal != "event":
            return await super().handle_signal(input)
        request: EventRequest = input.args[0]
        seq = _job().seq
        await super().handle_signal(input)
        if _job().seq > seq:  # a refused signal changes nothing
            exercised = _exercised()
            exercised.events.add(request.event.type)
            if request.actor.role == Role.integration:
                exercised.integration_signals.add(request.event.type)
        return None

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        outcome = await super().handle_update_handler(input)  # raises if the handler refused it
        if input.update == "apply_event":
            request: EventRequest = input.args[0]
            _exercised().events.add(request.event.type)
        return outcome


class _Observe(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _ObserveJob


@pytest.fixture(scope="module")
async def exercised() -> dict[str, Exercised]:
    """Every kept history replayed once with the observer: what each one exercised, by file."""
    paths = sorted(HISTORIES.glob("*.json"))
    _EXERCISED.clear()

    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in paths:
            yield _load(path)

    failures: dict[str, str] = {}
    async with _replayer([_Observe()]).workflow_replay_iterator(histories()) as results:
        async for result in results:
            if result.replay_failure is not None:
                failures[result.history.workflow_id] = repr(result.replay_failure)
    assert not failures, failures
    found = {name.removeprefix("replay-"): seen for name, seen in _EXERCISED.items()}
    assert sorted(found) == sorted(path.stem for path in paths)
    return found


def _by_history(found: dict[str, Exercised], kind: str) -> str:
    seen = {name: sorted(getattr(e, kind)) for name, e in sorted(found.items())}
    return f"seen, by history: {seen}; add them to a scenario in tests/histories/capture.py"


def test_the_observer_sees_what_a_known_history_holds(exercised: dict[str, Exercised]) -> None:
    """quote_follow_ups.json: seven events by Update, two follow-ups, nothing else."""
    seen = exercised["quote_follow_ups"]
    assert seen.events == {
        "job_created",
        "owner_assigned",
        "lead_qualified",
        "quote_drafted",
        "quote_sent",
        "quote_approved",
        "job_canceled",
    }
    assert seen.reminders == {"quote_follow_up"}
    assert not (seen.integration_signals or seen.carried_over or seen.continued_as_new)
    # parts_signal.json: the supplier's two deliveries by Signal (its refused one changes nothing).
    assert exercised["parts_signal"].integration_signals == {"parts_delivered"}


def test_histories_accept_every_event_type(exercised: dict[str, Exercised]) -> None:
    wanted = _event_types()
    assert len(wanted) == len(get_args(get_args(ev.Event)[0]))  # one type per member
    accepted = set().union(*(e.events for e in exercised.values()))
    missing = sorted(wanted - accepted)
    assert not missing, f"no kept history accepts {missing}; " + _by_history(exercised, "events")


def test_histories_fire_every_reminder_kind(exercised: dict[str, Exercised]) -> None:
    assert set(FIRED) == REMINDER_KINDS, "a new reminder kind: say in FIRED how a run shows it"
    fired = set().union(*(e.reminders for e in exercised.values()))
    missing = sorted(REMINDER_KINDS - fired)
    assert not missing, f"no kept history fires {missing}; " + _by_history(exercised, "reminders")


def test_histories_hold_a_signal_and_a_continue_as_new(exercised: dict[str, Exercised]) -> None:
    assert any(e.integration_signals for e in exercised.values()), "no integration's Signal"
    assert any(e.continued_as_new for e in exercised.values()), "no run continued as new"
    assert any(e.carried_over for e in exercised.values()), "no run carried on an earlier one"


# --- a refused update leaves no trace ---------------------------------------------------------

OLGA = Actor(username="olga", role=Role.office)
SAM = Actor(username="sam", role=Role.sales)
TESS = Actor(username="tess", role=Role.technician)
_EVENT: TypeAdapter[Any] = TypeAdapter(ev.Event)


def _request(actor: Actor, type_: str, **fields: Any) -> EventRequest:
    return EventRequest(event=_EVENT.validate_python({"type": type_, **fields}), actor=actor)


async def _quiet_length(handle: WorkflowHandle[Any, Any]) -> int:
    """The history's length once the job has settled after its last Update (answer-first: a
    timer and a read 2-4 s later) and nothing has been added to it for half a second."""
    await asyncio.sleep(SETTLED_S)
    length = (await handle.describe()).history_length
    for _ in range(40):
        await asyncio.sleep(0.5)
        now = (await handle.describe()).history_length
        if now == length:
            return length
        length = now
    raise AssertionError("the job's history kept growing")


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        # Who: technicians do not qualify leads.
        (_request(TESS, "lead_qualified"), "role_not_allowed"),
        # When: a quote is sent once it is drafted.
        (_request(OLGA, "quote_sent"), "event_not_allowed"),
        # What, against the job: an SMS to a client without a phone number.
        (_request(OLGA, "customer_update_sent", message="On our way", sms=True), "invalid_event"),
    ],
    ids=["role", "stage", "payload"],
)
async def test_a_refused_update_leaves_the_history_as_it_was(
    temporal_client: Client, tmp_path: Path, request_: EventRequest, code: str
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'jobline.db'}")
    await upgrade(db)
    async with db.session() as session:
        row = ClientRow(name="Example Client", email="office@example.com")  # no phone
        session.add(row)
        await session.flush()
        await session.refresh(row)
    assert row.id is not None
    customer = ClientSnapshot(id=row.id, name=row.name, email=row.email)
    slug = f"refused-{uuid.uuid4().hex[:10]}"
    task_queue = f"replay-refused-{uuid.uuid4().hex[:8]}"
    refused_id = f"refused-update-{uuid.uuid4().hex}"
    try:
        async with build_worker(temporal_client, db, task_queue):
            start = WithStartWorkflowOperation(
                JobWorkflow.run,
                JobInput(slug=slug, client=customer),
                id=workflow_id(slug),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
            created = _request(
                OLGA, "job_created", client_id=row.id, title="No heat", source="incoming_call"
            )
            await temporal_client.execute_update_with_start_workflow(
                JobWorkflow.apply_event, created, start_workflow_operation=start
            )
            handle = await start.workflow_handle()
            # Not first after the start: the dev server keeps the (empty) workflow task of the
            # first Update after an update-with-start even when the validator refuses it.
            await handle.execute_update(
                JobWorkflow.apply_event, _request(OLGA, "owner_assigned", owner="sam")
            )
            before = await handle.query(JobWorkflow.job)
            length = await _quiet_length(handle)

            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(JobWorkflow.apply_event, request_, id=refused_id)
            assert isinstance(refused.value.cause, ApplicationError)
            assert refused.value.cause.type == code, refused.value.cause

            assert (await handle.describe()).history_length == length
            assert await handle.query(JobWorkflow.job) == before
            # The job still takes events, and its history holds only the accepted ones.
            await handle.execute_update(JobWorkflow.apply_event, _request(SAM, "lead_qualified"))
            history = await handle.fetch_history()
            await handle.terminate("test over")
    finally:
        await db.dispose()
    assert refused_id not in history.to_json()
    updates = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    ]
    assert updates == ["apply_event"] * 3  # job_created, owner_assigned, lead_qualified


async def test_message_resend_histories_replay() -> None:
    """The resend workflow (workflows/message_resend.py) replays its kept histories too."""
    paths = sorted((HISTORIES / "message_resend").glob("*.json"))
    assert paths, "no MessageResend history; run python -m tests.histories.capture message_resend"
    replayer = Replayer(
        workflows=[MessageResendWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    for path in paths:
        history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
        assert history.events[-1].event_type in FINISHED, f"{path.name}: not finished"
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


async def test_resulting_histories_replay() -> None:
    """The resulting workflow (workflows/resulting.py) replays its kept histories: flagged
    unresulted, then resulted and resubmitted (each revision's PDF and email). It never finishes
    by itself (a result can be resubmitted any time); the capture ended it."""
    paths = sorted((HISTORIES / "resulting").glob("*.json"))
    assert paths, "no resulting history; run python -m tests.histories.capture resulting"
    replayer = Replayer(
        workflows=[JobResultWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    for path in paths:
        history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
        updates = [
            e
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED
        ]
        assert len(updates) == 2, f"{path.name}: a result and its resubmission"
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"
