"""Closeout settings and receipt field checks (models/closeout.py), pure.

- settings validation: defaults, and each refusal names what is wrong;
- `validate_receipt_fields`: what `job_completed` refuses (missing required field named by label
  and key, wrong type, option not offered, unknown key);
- the closeout notification's channel, and the secret-free settings a job workflow gets.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from models.closeout import CloseoutSettings, JobCloseout, validate_receipt_fields
from models.lifecycle import ClientSnapshot, new_job
from models.notifications import for_closeout

SECRET = "s" * 16


def _settings(**fields: Any) -> CloseoutSettings:
    return CloseoutSettings.model_validate(fields)


def _refused(fields: dict[str, Any], *mentions: str) -> str:
    with pytest.raises(ValidationError) as caught:
        CloseoutSettings.model_validate(fields)
    text = str(caught.value)
    for word in mentions:
        assert word in text, (word, text)
    return text


def test_defaults() -> None:
    settings = CloseoutSettings()
    assert settings.channel == "email"
    assert settings.receipt_fields == []
    assert settings.portal_link_days == 30
    assert settings.webhook_url is None and settings.webhook_secret is None


def test_a_full_document_is_accepted() -> None:
    settings = _settings(
        channel="both",
        receipt_fields=[
            {"key": "serial_number", "label": "Serial number", "required": True},
            {
                "key": "refrigerant",
                "label": "Refrigerant",
                "type": "dropdown",
                "options": ["R-410A", "R-22"],
            },
            {"key": "charge", "label": "Charge", "type": "currency"},
        ],
        portal_link_days=365,
        webhook_url="https://portal.example.com/hooks/closeout",
        webhook_secret=SECRET,
    )
    assert settings.field("refrigerant").options == ["R-410A", "R-22"]  # type: ignore[union-attr]
    assert settings.field("nope") is None
    assert _settings(channel="sms", webhook_url="http://10.0.0.5:8080/x", webhook_secret=SECRET)


@pytest.mark.parametrize(
    ("fields", "mentions"),
    [
        ({"channel": "fax"}, ["channel", "email", "sms", "both"]),
        ({"portal_link_days": 0}, ["portal_link_days"]),
        ({"portal_link_days": 366}, ["portal_link_days"]),
        ({"webhook_url": "ftp://example.com/x", "webhook_secret": SECRET}, ["http"]),
        ({"webhook_url": "not a url", "webhook_secret": SECRET}, ["webhook_url"]),
        ({"webhook_url": "https://", "webhook_secret": SECRET}, ["host"]),
        ({"webhook_url": "https://example.com/x"}, ["webhook_secret", "required"]),
        (
            {"webhook_url": "https://example.com/x", "webhook_secret": "short"},
            ["webhook_secret", "16"],
        ),
        ({"surprise": 1}, ["surprise"]),
        ({"receipt_fields": [{"key": "Serial Number", "label": "Serial"}]}, ["lower-case"]),
        ({"receipt_fields": [{"key": "", "label": "Serial"}]}, ["key"]),
        ({"receipt_fields": [{"key": "serial", "label": "  "}]}, ["label"]),
        ({"receipt_fields": [{"key": "serial"}]}, ["label"]),
        (
            {"receipt_fields": [{"key": "serial", "label": "S", "type": "photo"}]},
            ["type", "dropdown"],
        ),
        (
            {"receipt_fields": [{"key": "r", "label": "R", "type": "dropdown"}]},
            ["dropdown", "options"],
        ),
        (
            {
                "receipt_fields": [
                    {"key": "r", "label": "R", "type": "dropdown", "options": ["a", "a"]}
                ]
            },
            ["twice"],
        ),
        ({"receipt_fields": [{"key": "r", "label": "R", "options": ["a"]}]}, ["only dropdown"]),
        (
            {"receipt_fields": [{"key": "a", "label": "A"}, {"key": "a", "label": "B"}]},
            ["'a'", "unique"],
        ),
    ],
)
def test_nonsense_is_refused(fields: dict[str, Any], mentions: list[str]) -> None:
    _refused(fields, *mentions)


FIELDS = _settings(
    receipt_fields=[
        {"key": "serial", "label": "Serial number", "required": True},
        {"key": "hours", "label": "Hours", "type": "number"},
        {"key": "charge", "label": "Charge", "type": "currency"},
        {"key": "next_visit", "label": "Next visit", "type": "date"},
        {
            "key": "refrigerant",
            "label": "Refrigerant",
            "type": "dropdown",
            "options": ["R-410A", "R-22"],
        },
        {"key": "signed", "label": "Customer signed", "type": "checkbox", "required": True},
    ]
)


def test_good_fields_have_no_problems() -> None:
    assert validate_receipt_fields(FIELDS, {"serial": "X1", "signed": False}) == []
    full = {
        "serial": "X1",
        "hours": "2.5",
        "charge": "125.50",
        "next_visit": "2026-12-01",
        "refrigerant": "R-22",
        "signed": True,
    }
    assert validate_receipt_fields(FIELDS, full) == []
    assert (
        validate_receipt_fields(FIELDS, {**full, "hours": 3, "charge": 10, "refrigerant": None})
        == []
    )
    assert validate_receipt_fields(CloseoutSettings(), {}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("next_visit", "2000-01-01"),
        ("next_visit", "2100-12-31"),
        ("charge", "10000000.00"),
        ("charge", "0.00"),
        ("charge", "-0"),
        ("hours", 0.5),
    ],
)
def test_the_edges_of_the_range_are_taken(key: str, value: Any) -> None:
    assert validate_receipt_fields(FIELDS, {"serial": "X1", "signed": True, key: value}) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("next_visit", "9999-12-31"), ("charge", "10000000.01"), ("hours", " ٥ "), ("hours", "1_000")],
)
def test_a_closeout_in_a_history_from_before_the_bounds_replays_as_it_ran(
    key: str, value: Any
) -> None:
    """The bounds hold for closeouts built from today's settings; a JobCloseout recorded before
    them carries no `bounded` flag, and its job_completed is checked as it was then."""
    fields = {"serial": "X1", "signed": True, key: value}
    today = JobCloseout.of(FIELDS)
    assert today.bounded and len(validate_receipt_fields(today, fields)) == 1
    recorded = JobCloseout.model_validate(today.model_dump(exclude={"bounded"}))
    assert validate_receipt_fields(recorded, fields) == []


def test_missing_required_fields_are_named_by_label_and_key() -> None:
    problems = validate_receipt_fields(FIELDS, {"serial": "  "})
    assert problems == [
        "Serial number (serial) is required",
        "Customer signed (signed) is required",
    ]


@pytest.mark.parametrize(
    ("key", "value", "mention"),
    [
        ("serial", 42, "must be text"),
        ("serial", "x" * 2001, "longer"),
        ("hours", "lots", "must be a number"),
        ("hours", True, "must be a number"),
        ("hours", "nan", "must be a number"),
        ("charge", "12.345", "two decimal places"),
        ("charge", "-1", "negative"),
        ("charge", "ten", "amount of money"),
        ("charge", "10000000.01", "at most 10,000,000.00"),
        ("charge", "٥", "amount of money"),
        ("charge", " 5", "amount of money"),
        ("hours", "٥", "must be a number"),
        ("hours", "1_000", "must be a number"),
        ("next_visit", "tomorrow", "YYYY-MM-DD"),
        ("next_visit", 20261201, "YYYY-MM-DD"),
        ("next_visit", "20261201", "YYYY-MM-DD"),
        # The range every date takes (models/bounds.py): one day outside either end.
        ("next_visit", "1999-12-31", "2000-01-01 to 2100-12-31"),
        ("next_visit", "2101-01-01", "2000-01-01 to 2100-12-31"),
        ("next_visit", "9999-12-31", "2000-01-01 to 2100-12-31"),
        ("refrigerant", "R-12", "not one of the options: R-410A, R-22"),
        ("signed", "yes", "true or false"),
    ],
)
def test_wrong_values_are_named(key: str, value: Any, mention: str) -> None:
    fields = {"serial": "X1", "signed": True, key: value}
    problems = validate_receipt_fields(FIELDS, fields)
    assert len(problems) == 1, problems
    assert f"({key})" in problems[0] and mention in problems[0], problems


def test_unknown_keys_and_non_objects_are_refused() -> None:
    problems = validate_receipt_fields(FIELDS, {"serial": "X1", "signed": True, "colour": "red"})
    assert len(problems) == 1 and "unknown receipt field 'colour'" in problems[0]
    assert "serial" in problems[0]
    assert "none are configured" in validate_receipt_fields(CloseoutSettings(), {"a": 1})[0]
    assert validate_receipt_fields(FIELDS, ["serial"]) == [  # type: ignore[arg-type]
        "fields must be an object of receipt field values"
    ]


# --- the closeout notification's channel ------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "email", "phone", "sends"),
    [
        ("email", "a@example.com", "+15550100", (True, "no")),
        ("sms", "a@example.com", "+15550100", (False, "yes")),
        ("both", "a@example.com", "+15550100", (True, "yes")),
        # Nobody goes unannounced: the channel the customer can be reached on is used instead.
        ("sms", "a@example.com", None, (True, "no")),
        ("email", None, "+15550100", (False, "yes")),
        ("both", None, "+15550100", (False, "yes")),
    ],
)
def test_closeout_goes_by_the_channel_the_customer_can_be_reached_on(
    channel: str, email: str | None, phone: str | None, sends: tuple[bool, str]
) -> None:
    client = ClientSnapshot(id=1, name="C", email=email, phone=phone)
    state = new_job("abcd2345", client)
    note = for_closeout(state, channel)  # type: ignore[arg-type]
    assert (note.email, note.sms) == sends
    assert note.purpose == "closeout" and note.attach == "work_receipt"


def test_job_closeout_is_the_settings_without_the_webhook_secret() -> None:
    settings = CloseoutSettings.model_validate(
        {
            "channel": "both",
            "receipt_fields": FIELDS.model_dump()["receipt_fields"],
            "webhook_url": "https://portal.example.com/hook",
            "webhook_secret": "s" * 32,
        }
    )
    job = JobCloseout.of(settings)
    assert job.webhook is True and job.channel == "both"
    assert (
        "s" * 32 not in job.model_dump_json() and "portal.example.com" not in job.model_dump_json()
    )
    assert job.labels() == {f.key: f.label for f in settings.receipt_fields}
    assert validate_receipt_fields(job, {}) == validate_receipt_fields(settings, {})
