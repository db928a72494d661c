"""What the office board reads of a job, as pure functions of its state (issue 9 item 2).

The projection writes them into the job's row (core/projection_store.job_row: the `jobs`
columns `amount`, `quote_stale`, `parts_overdue`, `unpaid`; migration 0009 filled the rows
written before), so the board counts and sums plain columns instead of reading every open job's
state. One definition: the board's SQL (api/jobs/service.py) reads only these columns.

Each is decided by the state alone (never by the clock), so a row is right as long as its state
is: reminders that depend on time (stale quote, parts overdue) are flags the workflow raises.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from models.bounds import CENT
from models.lifecycle import JobState, Stage
from models.reminders import is_quote_stale

# Before approval a job is worth its quote (while one is being made, sent or saved).
QUOTED_STAGES = frozenset({Stage.quoting, Stage.quote_sent, Stage.saving})


def amount(state: JobState) -> Decimal | None:
    """What a job is worth on the board: the contract amount once approved, else the quote's
    total while quoting (none for a job without either)."""
    if state.contract_amount is not None:
        return state.contract_amount.quantize(CENT)
    if state.stage in QUOTED_STAGES and state.quote is not None:
        return state.quote.total.quantize(CENT)
    return None


def quote_stale(state: JobState) -> bool:
    """The quote out now is unanswered after every follow-up (the job is also `stuck`)."""
    return is_quote_stale(state)


def parts_overdue(state: JobState) -> bool:
    """Waiting for parts, and the parts-overdue reminder has fired for a line."""
    return state.stage == Stage.awaiting_parts and bool(state.reminders.parts_overdue_skus)


def unpaid(state: JobState) -> bool:
    """Invoiced with nothing paid, or verified and still waiting for payment."""
    if state.stage == Stage.verified:
        return True
    return state.stage == Stage.invoiced and not state.payments


def columns(state: JobState) -> dict[str, Any]:
    """The board's columns of the job's row."""
    return {
        "amount": amount(state),
        "quote_stale": quote_stale(state),
        "parts_overdue": parts_overdue(state),
        "unpaid": unpaid(state),
    }
