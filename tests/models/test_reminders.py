"""Durable reminders as pure functions (models/reminders.py, DESIGN.md §5).

Jobs are built through the lifecycle rules (`apply`), the way the workflow builds them, and the
workflow's part is played by hand: `pending` says what is due next, `fired` records it.

- `outside_quiet_hours`: spanning midnight, within a day, none; in a zone with daylight saving
  time (America/Chicago) on ordinary days and on both change-over nights; and, by hypothesis,
  never inside the quiet hours and never earlier than asked, in zones with and without DST.
- `pending` for each kind: quote follow-ups (every interval, or at approval_expected_at; stopped
  by approval, decline or cancel; stale after max_follow_ups; restarted by a revised quote),
  appointment reminders (moved by rescheduling), parts overdue, payment reminders until paid,
  stuck stages; only customer-facing reminders wait for the end of quiet hours.
- `fired`, `is_stuck`, `describe`, and the notifications each reminder sends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from models import events as ev
from models.bounds import DATE_MAX, DATE_MIN, DATETIME_MAX, DATETIME_MIN
from models.communications import CommunicationSettings, QuietHours
from models.lifecycle import Accepted, Actor, ClientSnapshot, JobState, Role, Stage, apply, new_job
from models.notifications import Notification, for_reminder
from models.reminders import (
    CUSTOMER_FACING,
    Due,
    describe,
    fired,
    is_stuck,
    outside_quiet_hours,
    pending,
)

OLGA = Actor(username="olga", role=Role.office)
MIA = Actor(username="mia", role=Role.manager)
SAM = Actor(username="sam", role=Role.sales)
TESS = Actor(username="tess", role=Role.technician)
CLIENT = ClientSnapshot(id=7, name="Example Client", email="client@example.com", phone="555-0101")
# A Monday, 09:00 in Chicago.
BASE = datetime(2030, 1, 7, 15, 0, tzinfo=UTC)
CHICAGO = ZoneInfo("America/Chicago")
H = timedelta(hours=1)
D = timedelta(days=1)
QUOTE = [{"description": "Condenser fan motor", "quantity": "1", "unit_price": "420.00"}]
EVIDENCE: dict[str, Any] = {
    name: True for name in ("documents", "notes", "parts_usage", "photos", "customer_communication")
}
# Most tests look at one kind of reminder at a time: no quiet hours, no stage limits.
PLAIN = CommunicationSettings(quiet_hours=None, stage_limits_hours={})

_EVENT: TypeAdapter[Any] = TypeAdapter(ev.Event)


def comms(**changes: Any) -> CommunicationSettings:
    return CommunicationSettings.model_validate(
        {"quiet_hours": None, "stage_limits_hours": {}, **changes}
    )


def quiet(start: str, end: str, zone: str = "UTC") -> CommunicationSettings:
    return comms(
        timezone=zone,
        quiet_hours=QuietHours(start=time.fromisoformat(start), end=time.fromisoformat(end)),
    )


class Job:
    """One job's state, moved by events through the lifecycle rules and by reminders firing."""

    def __init__(self, at: datetime = BASE) -> None:
        self.at = at
        self.state = new_job("ab12cd", CLIENT)

    def __call__(
        self, actor: Actor, type_: str, *, after: timedelta = timedelta(minutes=5), **fields: Any
    ) -> JobState:
        self.at += after
        decision = apply(
            self.state, _EVENT.validate_python({"type": type_, **fields}), actor, self.at
        )
        assert isinstance(decision, Accepted), decision
        self.state = decision.state.model_copy(update={"seq": self.state.seq + 1})
        return self.state

    def fire(self, settings: CommunicationSettings, due: Due | None = None) -> Due:
        """Fires the next reminder (or `due`) at its time, as the workflow's timer would."""
        due = due or pending(self.state, settings)[0]
        self.at = max(self.at, due.at)
        self.state = fired(self.state, due, self.at, settings)
        return due

    def created(self) -> JobState:
        return self(
            OLGA, "job_created", client_id=CLIENT.id, title="No cooling", source="incoming_call"
        )

    def quote_sent(self, **fields: Any) -> JobState:
        self.created()
        self(OLGA, "owner_assigned", owner="sam")
        self(SAM, "lead_qualified")
        self(SAM, "quote_drafted", lines=QUOTE)
        return self(SAM, "quote_sent", **fields)

    def approved(self) -> JobState:
        self.quote_sent()
        return self(OLGA, "quote_approved")

    def scheduled(self, start: datetime) -> JobState:
        return self(
            OLGA, "job_scheduled", technician="tess", window_start=start, window_end=start + 3 * H
        )

    def invoiced(self) -> JobState:
        self.approved()
        self.scheduled(self.at + 2 * D)
        self(
            OLGA,
            "checklist_completed",
            parts_verified=True,
            check_in_phone="555-0199",
            pricing_discussion="not_allowed",
        )
        self(TESS, "tech_dispatched")
        self(TESS, "tech_checked_in")
        self(TESS, "job_completed", work_performed="Replaced the fan motor")
        return self(OLGA, "invoice_sent")


def kinds(dues: list[Due]) -> list[tuple[str, datetime]]:
    return [(d.kind, d.at) for d in dues]


# --- outside_quiet_hours -----------------------------------------------------------------------


def at(text: str, zone: Any = UTC) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def test_no_quiet_hours_leave_the_time_alone() -> None:
    when = at("2030-01-07T23:59:30")
    assert outside_quiet_hours(when, comms()) == when


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2030-01-07T20:59:59", "2030-01-07T20:59:59"),  # before: as it was, to the second
        ("2030-01-07T21:00:00", "2030-01-08T08:00:00"),  # the first quiet minute
        ("2030-01-07T23:45:10", "2030-01-08T08:00:00"),
        ("2030-01-08T00:00:00", "2030-01-08T08:00:00"),  # after midnight: the same morning
        ("2030-01-08T07:59:59", "2030-01-08T08:00:00"),
        ("2030-01-08T08:00:00", "2030-01-08T08:00:00"),  # the first allowed minute
        ("2030-01-08T12:00:00", "2030-01-08T12:00:00"),
    ],
)
def test_quiet_hours_spanning_midnight(when: str, expected: str) -> None:
    assert outside_quiet_hours(at(when), quiet("21:00", "08:00")) == at(expected)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("2030-01-07T11:59:00", "2030-01-07T11:59:00"),
        ("2030-01-07T12:00:00", "2030-01-07T13:00:00"),
        ("2030-01-07T12:59:59", "2030-01-07T13:00:00"),
        ("2030-01-07T13:00:00", "2030-01-07T13:00:00"),
        ("2030-01-07T23:30:00", "2030-01-07T23:30:00"),
    ],
)
def test_quiet_hours_within_a_day(when: str, expected: str) -> None:
    assert outside_quiet_hours(at(when), quiet("12:00", "13:00")) == at(expected)


def test_the_result_keeps_the_callers_zone() -> None:
    plus5 = timezone(timedelta(hours=5))
    shifted = outside_quiet_hours(at("2030-01-08T03:00:00", plus5), quiet("21:00", "08:00"))
    # 03:00 at +05:00 is 22:00 UTC, quiet until 08:00 UTC: 13:00 at +05:00.
    assert shifted.tzinfo is plus5 and shifted == at("2030-01-08T08:00:00", UTC)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # Winter (CST, UTC-6) and summer (CDT, UTC-5): 08:00 in Chicago either way.
        ("2030-01-07T04:00:00", "2030-01-07T14:00:00"),
        ("2030-07-08T03:00:00", "2030-07-08T13:00:00"),
        # Quiet hours are wall-clock hours: 22:00 Chicago is quiet, 22:00 UTC is not.
        ("2030-01-07T22:00:00", "2030-01-07T22:00:00"),
        ("2030-01-08T04:00:00", "2030-01-08T14:00:00"),
        # The night the clocks go forward (2025-03-09 02:00 CST -> 03:00 CDT): 08:00 CDT.
        ("2025-03-09T04:00:00", "2025-03-09T13:00:00"),
        ("2025-03-09T08:30:00", "2025-03-09T13:00:00"),
        # The night they go back (2025-11-02 02:00 CDT -> 01:00 CST): 08:00 CST.
        ("2025-11-02T03:00:00", "2025-11-02T14:00:00"),
        ("2025-11-02T07:30:00", "2025-11-02T14:00:00"),  # 01:30 CST, the second 01:30
        ("2025-11-02T13:30:00", "2025-11-02T14:00:00"),  # 07:30 CST
        ("2025-11-02T14:00:00", "2025-11-02T14:00:00"),
    ],
)
def test_quiet_hours_in_a_zone_with_daylight_saving_time(when: str, expected: str) -> None:
    settings = quiet("21:00", "08:00", "America/Chicago")
    assert outside_quiet_hours(at(when), settings) == at(expected)


def test_quiet_hours_ending_in_the_hour_the_clocks_repeat() -> None:
    # 00:30-01:30 in Chicago; on 2025-11-02 01:00-02:00 comes twice (CDT, then CST).
    settings = quiet("00:30", "01:30", "America/Chicago")
    first = datetime(2025, 11, 2, 1, 15, tzinfo=CHICAGO)  # 06:15 UTC
    second = datetime(2025, 11, 2, 1, 15, fold=1, tzinfo=CHICAGO)  # 07:15 UTC
    assert outside_quiet_hours(first.astimezone(UTC), settings) == at("2025-11-02T06:30:00")
    # In the second pass the quiet hours end at the second 01:30, never before it is asked.
    assert outside_quiet_hours(second.astimezone(UTC), settings) == at("2025-11-02T07:30:00")


def test_quiet_hours_whose_free_minute_the_clocks_skip() -> None:
    # Quiet 01:01-01:00 in London leaves 01:00-01:01 free, but on 2025-03-30 the clocks jump from
    # 01:00 GMT to 02:00 BST: that day has no free minute, so the reminder waits for the next.
    settings = quiet("01:01", "01:00", "Europe/London")
    assert outside_quiet_hours(at("2025-03-30T00:59:00"), settings) == at("2025-03-31T00:00:00")


ZONES = ["UTC", "America/Chicago", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata"]
MINUTES_OF_DAY = st.integers(min_value=0, max_value=24 * 60 - 1)
QUIET_HOURS = (
    st.tuples(MINUTES_OF_DAY, MINUTES_OF_DAY)
    .filter(lambda t: t[0] != t[1])
    .map(lambda t: QuietHours(start=time(*divmod(t[0], 60)), end=time(*divmod(t[1], 60))))
)


def _inside(when: datetime, settings: CommunicationSettings) -> bool:
    assert settings.quiet_hours is not None
    start, end = settings.quiet_hours.start, settings.quiet_hours.end
    clock = when.astimezone(settings.zone).time()
    return start <= clock < end if start < end else (clock >= start or clock < end)


def quiet_settings(zones: list[str] = ZONES) -> st.SearchStrategy[CommunicationSettings]:
    # Copies of validated settings: validating each example's templates would dominate the run.
    return st.builds(
        lambda zone, quiet_hours: PLAIN.model_copy(
            update={"timezone": zone, "quiet_hours": quiet_hours}
        ),
        st.sampled_from(zones),
        QUIET_HOURS,
    )


# Instants around 2025's change-overs as well as anywhere in the year.
INSTANTS = st.one_of(
    st.datetimes(datetime(2025, 1, 1), datetime(2026, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(
        [datetime(2025, 3, 9, 8), datetime(2025, 3, 30, 1), datetime(2025, 4, 6, 2)]
        + [datetime(2025, 10, 5, 1), datetime(2025, 10, 26, 1), datetime(2025, 11, 2, 7)]
    ).flatmap(
        lambda base: st.integers(-36 * 60, 36 * 60).map(
            lambda minutes: (base + timedelta(minutes=minutes)).replace(tzinfo=UTC)
        )
    ),
)


@settings(max_examples=500)
@given(INSTANTS, quiet_settings())
def test_outside_quiet_hours_is_never_quiet_nor_earlier(
    when: datetime, settings: CommunicationSettings
) -> None:
    shifted = outside_quiet_hours(when, settings)
    assert shifted >= when
    assert not _inside(shifted, settings)
    # A day at most (25 h with the hour the clocks skip), two when the clocks may skip the whole
    # allowed window (quiet hours that leave an hour or less free).
    assert settings.quiet_hours is not None
    start, end = settings.quiet_hours.start, settings.quiet_hours.end
    free = (start.hour * 60 + start.minute - end.hour * 60 - end.minute) % (24 * 60)
    assert shifted - when <= timedelta(hours=25 if free > 60 else 49)
    if not _inside(when, settings):
        assert shifted == when
    else:
        assert shifted.second == 0 and shifted.microsecond == 0


@given(INSTANTS, quiet_settings(["UTC", "Asia/Kolkata"]))
def test_outside_quiet_hours_is_the_next_allowed_minute(
    when: datetime, settings: CommunicationSettings
) -> None:
    """Where the clocks never change, nothing earlier would do: every minute between is quiet."""
    shifted = outside_quiet_hours(when, settings)
    if shifted > when:
        assert _inside(shifted - timedelta(minutes=1), settings)


# --- quote follow-ups ------------------------------------------------------------------------


def test_nothing_is_pending_before_job_created_or_once_final() -> None:
    job = Job()
    assert pending(job.state, CommunicationSettings()) == []
    job.quote_sent()
    job(MIA, "job_canceled", reason="Customer went elsewhere")
    assert pending(job.state, CommunicationSettings()) == []


def test_a_follow_up_every_interval_after_the_quote_was_sent() -> None:
    job = Job()
    state = job.quote_sent()
    assert state.quote is not None and state.quote.sent_at is not None
    sent = state.quote.sent_at
    assert kinds(pending(state, PLAIN)) == [("quote_follow_up", sent + 72 * H)]
    assert kinds(pending(state, comms(follow_up_interval_hours=24))) == [
        ("quote_follow_up", sent + 24 * H)
    ]


def test_approval_expected_at_sets_the_first_follow_up() -> None:
    job = Job()
    expected = BASE + 30 * H
    job.quote_sent(approval_expected_at=expected)
    assert kinds(pending(job.state, PLAIN)) == [("quote_follow_up", expected)]
    job.fire(PLAIN)
    # The later ones keep the interval from the last.
    assert kinds(pending(job.state, PLAIN)) == [("quote_follow_up", expected + 72 * H)]


def test_follow_ups_then_the_quote_goes_stale() -> None:
    job = Job()
    sent = job.quote_sent().quote.sent_at  # type: ignore[union-attr]
    assert sent is not None
    fired_at = []
    for n in (1, 2, 3):
        due = job.fire(PLAIN)
        assert due.kind == "quote_follow_up" and due.at == sent + n * 72 * H
        assert job.state.reminders.follow_ups_sent == n
        assert describe(due, job.state, PLAIN) == f"Quote follow-up {n} of 3 sent"
        fired_at.append(due.at)
    assert not is_stuck(job.state)
    assert kinds(pending(job.state, PLAIN)) == [("quote_stale", sent + 4 * 72 * H)]
    stale = job.fire(PLAIN)
    assert job.state.reminders.quote_stale and job.state.reminders.follow_ups_sent == 3
    assert job.state.reminders.last_follow_up_at == fired_at[-1]
    assert (
        describe(stale, job.state, PLAIN) == "Quote flagged stale: no answer after 3 follow-up(s)"
    )
    # Flagged for ops, and nothing more to remind.
    assert is_stuck(job.state)
    assert pending(job.state, PLAIN) == []


def test_no_follow_ups_at_all_goes_stale_after_one_interval() -> None:
    job = Job()
    sent = job.quote_sent().quote.sent_at  # type: ignore[union-attr]
    assert sent is not None
    settings = comms(max_follow_ups=0)
    assert kinds(pending(job.state, settings)) == [("quote_stale", sent + 72 * H)]
    job.fire(settings)
    assert job.state.reminders.quote_stale and job.state.reminders.follow_ups_for == sent
    assert job.state.reminders.follow_ups_sent == 0
    assert pending(job.state, settings) == []


@pytest.mark.parametrize(
    ("actor", "type_", "fields"),
    [
        (OLGA, "quote_approved", {}),
        (SAM, "quote_declined", {"reason": "Too expensive"}),
        (MIA, "job_canceled", {"reason": "Customer went elsewhere"}),
    ],
)
def test_approval_decline_or_cancel_stops_the_follow_ups(
    actor: Actor, type_: str, fields: dict[str, Any]
) -> None:
    job = Job()
    job.quote_sent()
    job.fire(PLAIN)
    job(actor, type_, **fields)
    assert [d for d in pending(job.state, PLAIN) if d.kind.startswith("quote")] == []


def test_a_revised_quote_restarts_the_follow_ups() -> None:
    job = Job()
    job.quote_sent()
    for _ in range(4):
        job.fire(PLAIN)
    assert job.state.reminders.quote_stale and is_stuck(job.state)
    job(SAM, "quote_declined", reason="Over budget")
    assert not is_stuck(job.state)  # saving: no longer waiting on the customer
    job(
        SAM,
        "quote_drafted",
        lines=[{"description": "Fan motor", "quantity": "1", "unit_price": "380.00"}],
    )
    revised = job(SAM, "quote_sent")
    assert revised.quote is not None and revised.quote.version == 2
    resent = revised.quote.sent_at
    assert resent is not None
    # The old quote's count and stale flag belong to it, not to this one.
    assert kinds(pending(revised, PLAIN)) == [("quote_follow_up", resent + 72 * H)]
    assert not is_stuck(revised)
    due = job.fire(PLAIN)
    assert job.state.reminders.follow_ups_for == resent
    assert describe(due, job.state, PLAIN) == "Quote follow-up 1 of 3 sent"
    assert not job.state.reminders.quote_stale


def test_only_customer_facing_reminders_wait_for_quiet_hours() -> None:
    job = Job(at=datetime(2030, 1, 7, 19, 55, tzinfo=UTC))
    sent = job.quote_sent().quote.sent_at  # type: ignore[union-attr]
    assert sent is not None and sent.hour == 20
    night = comms(
        quiet_hours=QuietHours(start=time(19), end=time(7)),
        stage_limits_hours={"quote_sent": 24},
    )
    # The follow-up waits until 07:00; being stuck is for ops and is flagged at once.
    assert kinds(pending(job.state, night)) == [
        ("stuck", sent + 24 * H),
        ("quote_follow_up", datetime(2030, 1, 11, 7, 0, tzinfo=UTC)),
    ]
    assert "quote_stale" not in CUSTOMER_FACING and "stuck" not in CUSTOMER_FACING
    stale = comms(quiet_hours=QuietHours(start=time(19), end=time(7)), max_follow_ups=0)
    assert kinds(pending(job.state, stale)) == [("quote_stale", sent + 72 * H)]


# --- appointment reminders -------------------------------------------------------------------


def test_appointment_reminder_before_the_window_moves_with_rescheduling() -> None:
    job = Job()
    job.approved()
    window = BASE + 5 * D
    job.scheduled(window)
    assert kinds(pending(job.state, PLAIN)) == [("appointment_reminder", window - 24 * H)]
    assert kinds(pending(job.state, comms(appointment_reminder_hours=2))) == [
        ("appointment_reminder", window - 2 * H)
    ]
    moved = window + 2 * D
    job.scheduled(moved)
    assert kinds(pending(job.state, PLAIN)) == [("appointment_reminder", moved - 24 * H)]

    due = job.fire(PLAIN)
    assert job.state.reminders.appointment_reminded_for == moved
    assert describe(due, job.state, PLAIN) == "Appointment reminder sent"
    assert pending(job.state, PLAIN) == []
    # Rescheduled after the reminder went: the new window gets its own.
    again = moved + D
    job.scheduled(again)
    assert kinds(pending(job.state, PLAIN)) == [("appointment_reminder", again - 24 * H)]


def test_no_appointment_reminder_when_booked_inside_the_reminder_period() -> None:
    job = Job()
    job.approved()
    job.scheduled(job.at + 6 * H)  # the confirmation just went out
    assert pending(job.state, PLAIN) == []


def test_appointment_reminder_respects_quiet_hours() -> None:
    job = Job()
    job.approved()
    window = datetime(2030, 1, 10, 13, 0, tzinfo=UTC)  # 07:00 in Chicago
    job.scheduled(window)
    settings = quiet("21:00", "08:00", "America/Chicago")
    settings = settings.model_copy(update={"appointment_reminder_hours": 12})
    # 12 h before is 19:00 the evening before in Chicago: allowed.
    assert kinds(pending(job.state, settings)) == [("appointment_reminder", window - 12 * H)]
    settings = settings.model_copy(update={"appointment_reminder_hours": 8})
    # 8 h before is 23:00: it goes at 08:00, after the visit's start; still better than at night.
    assert kinds(pending(job.state, settings)) == [
        ("appointment_reminder", datetime(2030, 1, 10, 14, 0, tzinfo=UTC))
    ]


# --- parts overdue ---------------------------------------------------------------------------


def _part(sku: str, expected: date) -> dict[str, Any]:
    return {
        "sku": sku,
        "description": f"Part {sku}",
        "quantity": 1,
        "supplier": "Example Supply Co",
        "po_number": f"PO-{sku}",
        "expected_delivery": expected,
    }


def test_parts_overdue_at_the_end_of_the_expected_day_in_the_company_zone() -> None:
    job = Job()
    job.approved()
    job(
        OLGA,
        "parts_ordered",
        parts=[_part("FAN", date(2030, 1, 10)), _part("CAP", date(2030, 1, 12))],
    )
    utc_midnight = datetime(2030, 1, 11, 0, 0, tzinfo=UTC)
    assert kinds(pending(job.state, PLAIN)) == [("parts_overdue", utc_midnight)]
    chicago = comms(timezone="America/Chicago")
    chicago_midnight = datetime(2030, 1, 11, 6, 0, tzinfo=UTC)
    assert kinds(pending(job.state, chicago)) == [("parts_overdue", chicago_midnight)]

    due = job.fire(chicago)
    # Only what is overdue by then is alerted; the other part waits for its own day.
    assert job.state.reminders.parts_overdue_skus == ["FAN"]
    assert describe(due, job.state, chicago) == "Parts overdue: FAN (office alerted)"
    assert kinds(pending(job.state, chicago)) == [
        ("parts_overdue", datetime(2030, 1, 13, 6, 0, tzinfo=UTC))
    ]
    job.fire(chicago)
    assert job.state.reminders.parts_overdue_skus == ["CAP", "FAN"]
    assert pending(job.state, chicago) == []


def test_a_delivered_part_is_never_overdue() -> None:
    job = Job()
    job.approved()
    job(
        OLGA,
        "parts_ordered",
        parts=[_part("FAN", date(2030, 1, 10)), _part("CAP", date(2030, 1, 12))],
    )
    job(OLGA, "parts_delivered", skus=["FAN"])
    assert kinds(pending(job.state, PLAIN)) == [
        ("parts_overdue", datetime(2030, 1, 13, 0, 0, tzinfo=UTC))
    ]
    job(OLGA, "parts_delivered", skus=["CAP"])
    assert job.state.stage == Stage.ready_to_schedule
    assert pending(job.state, PLAIN) == []


# --- payment reminders -----------------------------------------------------------------------


def test_payment_reminders_every_n_days_until_paid() -> None:
    job = Job()
    state = job.invoiced()
    assert state.invoice is not None
    invoiced = state.invoice.sent_at
    settings = comms(payment_reminder_days=3)
    assert kinds(pending(state, settings)) == [("payment_reminder", invoiced + 3 * D)]
    first = job.fire(settings)
    assert kinds(pending(job.state, settings)) == [("payment_reminder", first.at + 3 * D)]
    second = job.fire(settings)
    assert describe(second, job.state, settings) == "Payment reminder 2 sent"
    # Verified but unpaid, or partly paid: still reminded.
    job(MIA, "evidence_verified", **EVIDENCE)
    job(OLGA, "payment_recorded", amount="100.00", method="check")
    assert job.state.stage == Stage.verified
    assert kinds(pending(job.state, settings)) == [("payment_reminder", second.at + 3 * D)]
    job(OLGA, "payment_recorded", amount="320.00", method="check")
    assert job.state.stage == Stage.closed and pending(job.state, settings) == []


def test_paid_before_verification_stops_the_reminders() -> None:
    job = Job()
    job.invoiced()
    job(OLGA, "payment_recorded", amount="420.00", method="card")
    assert job.state.stage == Stage.invoiced and job.state.paid_in_full
    assert pending(job.state, PLAIN) == []


def test_payment_reminders_wait_for_quiet_hours() -> None:
    job = Job(at=datetime(2030, 1, 7, 22, 0, tzinfo=UTC))
    state = job.invoiced()
    assert state.invoice is not None and state.invoice.sent_at.hour == 23
    (due,) = pending(state, quiet("21:00", "08:00").model_copy(update={"payment_reminder_days": 7}))
    assert due.at == datetime.combine(state.invoice.sent_at.date() + 8 * D, time(8), tzinfo=UTC)


# --- stuck -----------------------------------------------------------------------------------


def test_stuck_after_the_stage_limit_until_the_stage_changes() -> None:
    job = Job()
    state = job.created()
    settings = comms(stage_limits_hours={"lead": 48, "prospect": 72})
    assert kinds(pending(state, settings)) == [("stuck", BASE + timedelta(minutes=5) + 48 * H)]
    assert not is_stuck(state)
    due = job.fire(settings)
    assert is_stuck(job.state) and job.state.reminders.stuck_since == state.stage_entered_at
    assert describe(due, job.state, settings) == "Flagged stuck: lead for more than 48 h"
    assert pending(job.state, settings) == []
    # Events that keep the stage keep the flag; a new stage clears it and has its own limit.
    job(OLGA, "note_added", text="Left a voicemail")
    assert is_stuck(job.state)
    job(OLGA, "owner_assigned", owner="sam")
    prospect = job(SAM, "lead_qualified")
    assert not is_stuck(prospect)
    assert prospect.stage_entered_at is not None
    assert kinds(pending(prospect, settings)) == [("stuck", prospect.stage_entered_at + 72 * H)]
    # A stage without a limit is never stuck.
    job(SAM, "quote_drafted", lines=QUOTE)
    assert pending(job.state, settings) == []


def test_pending_is_earliest_first() -> None:
    job = Job()
    state = job.quote_sent()
    sent = state.quote.sent_at  # type: ignore[union-attr]
    assert sent is not None
    settings = comms(stage_limits_hours={"quote_sent": 100})
    assert kinds(pending(state, settings)) == [
        ("quote_follow_up", sent + 72 * H),
        ("stuck", sent + 100 * H),
    ]
    settings = comms(stage_limits_hours={"quote_sent": 10})
    assert [d.kind for d in pending(state, settings)] == ["stuck", "quote_follow_up"]


# --- fired and what each reminder sends -----------------------------------------------------


def test_fired_leaves_its_input_alone() -> None:
    job = Job()
    state = job.quote_sent()
    before = state.model_copy(deep=True)
    (due,) = pending(state, PLAIN)
    after = fired(state, due, due.at, PLAIN)
    assert state == before
    assert after.reminders.follow_ups_sent == 1 and after.seq == state.seq  # seq is the workflow's


def test_what_each_reminder_sends() -> None:
    job = Job()
    state = job.invoiced()
    assert for_reminder("quote_follow_up", state) == [Notification(purpose="quote_follow_up")]
    assert for_reminder("appointment_reminder", state) == [
        Notification(purpose="appointment_reminder")
    ]
    # Payment reminders go to the billing address, by email only; parts alerts to the office.
    assert for_reminder("payment_reminder", state) == [
        Notification(purpose="payment_reminder", sms="no", to_email="client@example.com")
    ]
    assert for_reminder("parts_overdue", state) == [
        Notification(purpose="parts_overdue", sms="no", to_office=True)
    ]
    # Stale quotes and stuck stages raise flags only.
    assert for_reminder("quote_stale", state) == []
    assert for_reminder("stuck", state) == []


# --- the workflow's loop, simulated ----------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    interval=st.integers(1, 24 * 14),
    max_follow_ups=st.integers(0, 6),
    expected_in=st.one_of(st.none(), st.integers(1, 24 * 30)),
    quiet_hours=st.one_of(st.none(), QUIET_HOURS),
    zone=st.sampled_from(ZONES),
)
def test_a_quote_gets_exactly_its_follow_ups_then_goes_stale(
    interval: int,
    max_follow_ups: int,
    expected_in: int | None,
    quiet_hours: QuietHours | None,
    zone: str,
) -> None:
    """Fires whatever is due next, as the workflow does, until nothing is: max_follow_ups
    follow-ups, each outside quiet hours and an interval or more after the last, then stale."""
    settings = PLAIN.model_copy(
        update={
            "follow_up_interval_hours": interval,
            "max_follow_ups": max_follow_ups,
            "quiet_hours": quiet_hours,
            "timezone": zone,
        }
    )
    job = Job()
    expected = BASE + expected_in * H if expected_in else None
    state = job.quote_sent(**({"approval_expected_at": expected} if expected else {}))
    sent = state.quote.sent_at  # type: ignore[union-attr]
    assert sent is not None
    seen: list[Due] = []
    while pending(job.state, settings):
        assert len(seen) <= max_follow_ups, "more reminders than follow-ups and a stale flag"
        due = job.fire(settings)
        assert not seen or due.at > seen[-1].at
        seen.append(due)
    follow_ups = [d for d in seen if d.kind == "quote_follow_up"]
    assert [d.kind for d in seen] == ["quote_follow_up"] * max_follow_ups + ["quote_stale"]
    assert job.state.reminders.follow_ups_sent == max_follow_ups
    assert job.state.reminders.quote_stale and is_stuck(job.state)
    for n, due in enumerate(follow_ups):
        assert quiet_hours is None or not _inside(due.at, settings)
        earliest = (
            (expected or sent + interval * H) if n == 0 else follow_ups[n - 1].at + interval * H
        )
        assert due.at >= earliest
    last = follow_ups[-1].at if follow_ups else sent
    assert seen[-1].at == last + interval * H
    # The job goes on: approval clears the flag.
    job(OLGA, "quote_approved")
    assert not is_stuck(job.state) and pending(job.state, settings) == []


# --- the allowed range of dates (models/bounds.py) -----------------------------------------------

# The zones furthest from UTC either way, and one with daylight saving time.
EDGE_ZONES = ["Pacific/Kiritimati", "Etc/GMT+12", "America/Chicago", "UTC"]
OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
ROOM = timedelta(days=30)  # what a path needs after its first event (a schedule two days on, ...)


def moments(
    low: datetime = DATETIME_MIN, high: datetime = DATETIME_MAX
) -> st.SearchStrategy[datetime]:
    """Instants in [low, high], written in any offset (the instant is what is bounded)."""
    return st.builds(
        lambda when, offset: when.replace(tzinfo=UTC).astimezone(offset),
        st.datetimes(low.replace(tzinfo=None), high.replace(tzinfo=None)),
        OFFSETS,
    )


def _hours(low: int = 1, high: int = 24 * 90) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([low, high]), st.integers(low, high))


EDGE_SETTINGS = st.builds(
    lambda zone, quiet_hours, interval, follow_ups, appointment, payment, limit: PLAIN.model_copy(
        update={
            "timezone": zone,
            "quiet_hours": quiet_hours,
            "follow_up_interval_hours": interval,
            "max_follow_ups": follow_ups,
            "appointment_reminder_hours": appointment,
            "payment_reminder_days": payment,
            "stage_limits_hours": {s: limit for s in Stage if s not in FINAL},
        }
    ),
    st.sampled_from(EDGE_ZONES),
    st.one_of(st.none(), QUIET_HOURS),
    _hours(),
    st.sampled_from([0, 1, 3, 50]),
    _hours(),
    _hours(1, 365),
    _hours(),
)
FINAL = {Stage.closed, Stage.canceled}


def _far(zone: str) -> CommunicationSettings:
    """The longest waits the settings allow, quiet hours but for a minute, in `zone`."""
    return PLAIN.model_copy(
        update={
            "timezone": zone,
            "quiet_hours": QuietHours(start=time(0, 1), end=time(0, 0)),
            "follow_up_interval_hours": 24 * 90,
            "max_follow_ups": 3,
            "appointment_reminder_hours": 24 * 90,
            "payment_reminder_days": 365,
            "stage_limits_hours": {s: 24 * 90 for s in Stage if s not in FINAL},
        }
    )


# The edges themselves, in the zones furthest ahead of and behind UTC.
EAST, WEST = _far("Pacific/Kiritimati"), _far("Etc/GMT+12")
LAST_START = DATETIME_MAX - ROOM


def _every_reminder_fires(job: Job, settings: CommunicationSettings, limit: int = 60) -> set[str]:
    """Fires whatever is due, as the workflow does, until nothing is (payment reminders repeat
    until paid: a few of them do). Every step's arithmetic must hold."""
    seen: set[str] = set()
    for _ in range(limit):
        dues = pending(job.state, settings)
        if not dues:
            break
        assert all(d.at.tzinfo is not None for d in dues)
        due = job.fire(settings)
        describe(due, job.state, settings)
        is_stuck(job.state)
        seen.add(due.kind)
    return seen


@settings(max_examples=200, deadline=None)
@given(start=moments(high=LAST_START), expected=moments(), comms_=EDGE_SETTINGS)
@example(start=DATETIME_MIN, expected=DATETIME_MAX, comms_=EAST)
@example(
    start=LAST_START, expected=DATETIME_MAX.astimezone(timezone(timedelta(hours=-12))), comms_=WEST
)
@example(start=DATETIME_MIN, expected=DATETIME_MIN, comms_=WEST)
def test_quote_reminders_hold_over_the_allowed_range(
    start: datetime, expected: datetime, comms_: CommunicationSettings
) -> None:
    job = Job(at=start)
    fields = {"approval_expected_at": expected} if expected > start + H else {}
    job.quote_sent(**fields)
    seen = _every_reminder_fires(job, comms_)
    assert "quote_stale" in seen or "stuck" in seen


@settings(max_examples=200, deadline=None)
@given(start=moments(high=LAST_START), window=moments(high=DATETIME_MAX - H), comms_=EDGE_SETTINGS)
@example(start=DATETIME_MIN, window=DATETIME_MIN, comms_=WEST)
@example(start=DATETIME_MIN, window=DATETIME_MAX - H, comms_=EAST)
@example(start=LAST_START, window=DATETIME_MAX - H, comms_=WEST)
def test_appointment_reminders_hold_over_the_allowed_range(
    start: datetime, window: datetime, comms_: CommunicationSettings
) -> None:
    job = Job(at=start)
    job.approved()
    end = min(window + 3 * H, DATETIME_MAX)
    job(OLGA, "job_scheduled", technician="tess", window_start=window, window_end=end)
    assert _every_reminder_fires(job, comms_) <= {"appointment_reminder", "stuck"}


@settings(max_examples=200, deadline=None)
@given(
    start=moments(high=LAST_START),
    days=st.lists(st.dates(DATE_MIN, DATE_MAX), min_size=1, max_size=3),
    comms_=EDGE_SETTINGS,
)
@example(start=DATETIME_MIN, days=[DATE_MIN, DATE_MAX], comms_=EAST)
@example(start=LAST_START, days=[DATE_MAX, DATE_MIN], comms_=WEST)
def test_parts_overdue_holds_over_the_allowed_range(
    start: datetime, days: list[date], comms_: CommunicationSettings
) -> None:
    job = Job(at=start)
    job.approved()
    job(OLGA, "parts_ordered", parts=[_part(f"P{n}", day) for n, day in enumerate(days)])
    seen = _every_reminder_fires(job, comms_)
    assert "parts_overdue" in seen
    assert job.state.reminders.parts_overdue_skus == sorted(f"P{n}" for n in range(len(days)))


@settings(max_examples=200, deadline=None)
@given(start=moments(high=LAST_START), comms_=EDGE_SETTINGS)
@example(start=DATETIME_MIN, comms_=WEST)
@example(start=LAST_START, comms_=EAST)
def test_payment_reminders_and_stuck_hold_over_the_allowed_range(
    start: datetime, comms_: CommunicationSettings
) -> None:
    job = Job(at=start)
    job.invoiced()
    seen = _every_reminder_fires(job, comms_, limit=8)
    assert "payment_reminder" in seen


def test_a_date_from_before_the_bounds_never_stops_the_job() -> None:
    """Jobs that took a year-1 or year-9999 date before dates were bounded keep their other
    reminders: the one whose time a datetime cannot hold is never due (it used to raise
    OverflowError in every workflow task)."""
    far_west = timezone(timedelta(hours=-12))
    settings = _far("Pacific/Kiritimati")

    quote = Job()
    quote.quote_sent()
    assert quote.state.quote is not None
    beyond = datetime(9999, 12, 31, 23, 0, tzinfo=far_west)
    quote.state = quote.state.model_copy(
        update={"quote": quote.state.quote.model_copy(update={"approval_expected_at": beyond})}
    )
    assert [d.kind for d in pending(quote.state, settings)] == ["stuck"]

    visit = Job()
    visit.approved()
    visit.scheduled(BASE + 2 * D)
    assert visit.state.schedule is not None
    first = datetime(1, 1, 1, tzinfo=UTC)
    schedule = visit.state.schedule.model_copy(
        update={"window_start": first, "window_end": first + H}
    )
    visit.state = visit.state.model_copy(update={"schedule": schedule})
    assert [d.kind for d in pending(visit.state, settings)] == ["stuck"]

    parts = Job()
    parts.approved()
    parts(OLGA, "parts_ordered", parts=[_part("FAN", date(2030, 1, 10))])
    order = parts.state.parts[0]
    last_day = order.model_copy(
        update={"line": order.line.model_copy(update={"expected_delivery": date.max})}
    )
    parts.state = parts.state.model_copy(update={"parts": [last_day]})
    assert [d.kind for d in pending(parts.state, settings)] == ["stuck"]
    due = parts.fire(settings)
    assert (
        fired(
            parts.state, Due("parts_overdue", due.at), due.at, settings
        ).reminders.parts_overdue_skus
        == []
    )
