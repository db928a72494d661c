"""Replay every kept history (tests/histories/*.json) against the current JobWorkflow code.

A workflow change that would break a running job (a non-deterministic change without
`workflow.patched` or worker versioning) fails here. The histories come from real runs:
`.venv/bin/python -m tests.histories.capture` re-captures them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.job import JobWorkflow
from workflows.runner import workflow_runner

HISTORIES = Path(__file__).resolve().parent.parent / "histories"
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


def _replayer() -> Replayer:
    return Replayer(
        workflows=[JobWorkflow],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
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
