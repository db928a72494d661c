"""Durable reminders (DESIGN.md §5) as pure functions: what is due next, and when.

The workflow asks `pending(state, settings)` whenever a wait begins (after every event, and after
every reminder fires), sleeps until the earliest, then calls `fired(state, due, at)` to record it.
Each kind of reminder is keyed by what it is about (the quote's sent time, the appointment's
window, the stage's entry time, ...), so a revised quote or a rescheduled visit starts afresh and
nothing is reminded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from models.communications import CommunicationSettings
from models.lifecycle import FINAL_STAGES, JobState, Stage

Kind = Literal[
    "quote_follow_up",
    "quote_stale",
    "appointment_reminder",
    "parts_overdue",
    "payment_reminder",
    "stuck",
]
# Reminders that reach the customer wait for the end of the company's quiet hours.
CUSTOMER_FACING = frozenset({"quote_follow_up", "appointment_reminder", "payment_reminder"})


@dataclass(frozen=True)
class Due:
    kind: Kind
    at: datetime


def _end_of_quiet(when: datetime, settings: CommunicationSettings) -> datetime | None:
    """The end of the quiet hours `when` falls in (company time zone), or None if it does not."""
    quiet = settings.quiet_hours
    if quiet is None:
        return None
    local = when.astimezone(settings.zone)
    clock = local.time()
    if quiet.start < quiet.end:  # e.g. 12:00–13:00
        inside = quiet.start <= clock < quiet.end
        end_day = local.date()
    else:  # spans midnight, e.g. 21:00–08:00
        inside = clock >= quiet.start or clock < quiet.end
        end_day = local.date() + timedelta(days=1) if clock >= quiet.start else local.date()
    if not inside:
        return None
    end = datetime.combine(end_day, quiet.end, tzinfo=settings.zone)
    if end < when:  # the clocks went back and `when` is in the repeated hour's second pass
        end = end.replace(fold=1)
    return end.astimezone(when.tzinfo)


def outside_quiet_hours(when: datetime, settings: CommunicationSettings) -> datetime:
    """`when`, or the end of the quiet hours it falls in (company time zone), to the minute."""
    # Usually one step. When the clocks spring forward over the whole allowed window (quiet
    # 01:01–01:00 on the night 01:00 is skipped), that end is inside the next quiet hours, and
    # the next end, a day later, is the answer.
    while (end := _end_of_quiet(when, settings)) is not None:
        when = end
    return when


def _end_of_day(day: date, settings: CommunicationSettings) -> datetime | None:
    """Midnight after `day` in the company's zone; None past the last day a datetime holds."""
    try:
        return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=settings.zone)
    except OverflowError:
        return None


def _quote_due(state: JobState, settings: CommunicationSettings) -> Due | None:
    quote = state.quote
    if state.stage != Stage.quote_sent or quote is None or quote.sent_at is None:
        return None
    r = state.reminders
    same_quote = r.follow_ups_for == quote.sent_at
    if r.quote_stale and same_quote:
        return None
    sent = r.follow_ups_sent if same_quote else 0
    interval = timedelta(hours=settings.follow_up_interval_hours)
    last = r.last_follow_up_at if same_quote and sent else None
    if sent < settings.max_follow_ups:
        first = quote.approval_expected_at or quote.sent_at + interval
        return Due("quote_follow_up", last + interval if last else first)
    return Due("quote_stale", (last or quote.sent_at) + interval)


def _appointment_due(state: JobState, settings: CommunicationSettings) -> Due | None:
    schedule = state.schedule
    if state.stage != Stage.scheduled or schedule is None:
        return None
    at = schedule.window_start - timedelta(hours=settings.appointment_reminder_hours)
    booked = schedule.scheduled_at or at
    if state.reminders.appointment_reminded_for != schedule.window_start and booked <= at:
        return Due("appointment_reminder", at)
    return None


def _parts_due(state: JobState, settings: CommunicationSettings) -> Due | None:
    if state.stage != Stage.awaiting_parts:
        return None
    late = [
        end
        for p in state.outstanding_parts
        if p.line.sku not in state.reminders.parts_overdue_skus
        and (end := _end_of_day(p.line.expected_delivery, settings)) is not None
    ]
    return Due("parts_overdue", min(late)) if late else None


def _payment_due(state: JobState, settings: CommunicationSettings) -> Due | None:
    invoice = state.invoice
    if state.stage not in (Stage.invoiced, Stage.verified) or not invoice or state.paid_in_full:
        return None
    r = state.reminders
    last = r.last_payment_reminder_at if r.payment_reminders_for == invoice.sent_at else None
    return Due(
        "payment_reminder",
        (last or invoice.sent_at) + timedelta(days=settings.payment_reminder_days),
    )


def _stuck_due(state: JobState, settings: CommunicationSettings) -> Due | None:
    limit = settings.stage_limits_hours.get(state.stage) if state.stage else None
    entered = state.stage_entered_at
    if limit and entered is not None and state.reminders.stuck_since != entered:
        return Due("stuck", entered + timedelta(hours=limit))
    return None


_KINDS = (_quote_due, _appointment_due, _parts_due, _payment_due, _stuck_due)


def pending(state: JobState, settings: CommunicationSettings) -> list[Due]:
    """Every reminder this job is waiting for, earliest first."""
    if state.stage is None or state.stage in FINAL_STAGES:
        return []
    dues: list[Due] = []
    for kind in _KINDS:
        # Dates are bounded at the edge (models/bounds.py), and over that range nothing here
        # overflows (tests/models/test_reminders.py). A date taken before they were is not
        # allowed to stop the job: a reminder whose time a datetime cannot hold is never due.
        try:
            due = kind(state, settings)
            if due is not None and due.kind in CUSTOMER_FACING:
                due = Due(due.kind, outside_quiet_hours(due.at, settings))
        except OverflowError:
            continue
        if due is not None:
            dues.append(due)
    return sorted(dues, key=lambda d: d.at)


def is_stuck(state: JobState) -> bool:
    """Flagged for ops (`Stuck`, the job row and view): a stage held past its limit, or a quote
    still unanswered after every follow-up (stale)."""
    r = state.reminders
    if r.stuck_since is not None and r.stuck_since == state.stage_entered_at:
        return True
    return is_quote_stale(state)


def is_quote_stale(state: JobState) -> bool:
    """The quote out now is still unanswered after every follow-up (flagged by `quote_stale`;
    a revised quote, sent anew, is not)."""
    r = state.reminders
    quote = state.quote
    return (
        state.stage == Stage.quote_sent
        and r.quote_stale
        and quote is not None
        and r.follow_ups_for == quote.sent_at
    )


def overdue_skus(state: JobState, settings: CommunicationSettings, at: datetime) -> list[str]:
    return [
        p.line.sku
        for p in state.outstanding_parts
        if (end := _end_of_day(p.line.expected_delivery, settings)) is not None and end <= at
    ]


def fired(state: JobState, due: Due, at: datetime, settings: CommunicationSettings) -> JobState:
    """The job's state once this reminder has gone out (or its flag has been raised)."""
    r = state.reminders
    changes: dict[str, object] = {}
    if due.kind == "quote_follow_up" and state.quote is not None:
        same = r.follow_ups_for == state.quote.sent_at
        changes = {
            "follow_ups_for": state.quote.sent_at,
            "follow_ups_sent": (r.follow_ups_sent if same else 0) + 1,
            "last_follow_up_at": at,
            "quote_stale": False,
        }
    elif due.kind == "quote_stale" and state.quote is not None:
        if r.follow_ups_for != state.quote.sent_at:  # no follow-ups at all (max_follow_ups 0)
            changes["follow_ups_for"] = state.quote.sent_at
            changes["follow_ups_sent"] = 0
        changes["quote_stale"] = True
    elif due.kind == "appointment_reminder" and state.schedule is not None:
        changes = {"appointment_reminded_for": state.schedule.window_start}
    elif due.kind == "parts_overdue":
        changes = {
            "parts_overdue_skus": sorted(
                {*r.parts_overdue_skus, *overdue_skus(state, settings, at)}
            )
        }
    elif due.kind == "payment_reminder" and state.invoice is not None:
        same = r.payment_reminders_for == state.invoice.sent_at
        changes = {
            "payment_reminders_for": state.invoice.sent_at,
            "payment_reminders_sent": (r.payment_reminders_sent if same else 0) + 1,
            "last_payment_reminder_at": at,
        }
    elif due.kind == "stuck":
        changes = {"stuck_since": state.stage_entered_at}
    return state.model_copy(update={"reminders": r.model_copy(update=changes)})


def describe(due: Due, state: JobState, settings: CommunicationSettings) -> str:
    """The timeline's line for a reminder that fired (state is after `fired`)."""
    r = state.reminders
    match due.kind:
        case "quote_follow_up":
            return f"Quote follow-up {r.follow_ups_sent} of {settings.max_follow_ups} sent"
        case "quote_stale":
            return f"Quote flagged stale: no answer after {r.follow_ups_sent} follow-up(s)"
        case "appointment_reminder":
            return "Appointment reminder sent"
        case "parts_overdue":
            return "Parts overdue: " + ", ".join(r.parts_overdue_skus) + " (office alerted)"
        case "payment_reminder":
            return f"Payment reminder {r.payment_reminders_sent} sent"
        case _:
            stage = state.stage.value if state.stage else "?"
            limit = settings.stage_limits_hours.get(state.stage) if state.stage else None
            return f"Flagged stuck: {stage} for more than {limit} h"
