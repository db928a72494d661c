"""The form and the ranges of dates, money and ids (models/bounds.py), at the level of the models.

Validated two ways: as a client's input (`context=EDGE`, what the API does) and as a stored
payload (JSON, no context: what a workflow history replays).

- Every date and time field of the events takes the first and the last allowed value and refuses
  one step outside (a microsecond, a day), in any offset, with a message that names the field;
  the values that stopped jobs (year 9999 at -12:00, year 1, 9999-12-31) are refused. Stored,
  the same values still read (a history from before the bounds replays).
- Money and quantities: the largest unit price, quantity, line and document total are taken and
  a cent (or a thousandth) more is refused, for quotes, invoices and payments; -0 reads as 0.
- Form, both ways: `true`, "٥", " 5" are not amounts; `true`, "5" and 5.0 are not ids; "true" is
  not a flag; a number is not a date. JSON numbers are amounts.
- What the models write reads back the same.
- Settings documents as a client sends them refuse a NUL in any text, naming where it is; a
  stored document is read as it is.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

import pytest
from pydantic import TypeAdapter, ValidationError

from models import events as ev
from models.bounds import (
    DATE_MAX,
    DATE_MIN,
    DATETIME_MAX,
    DATETIME_MIN,
    EDGE,
    ID_MAX,
    MONEY_MAX,
    QUANTITY_MAX,
)
from models.branding import BrandingSettings
from models.closeout import CloseoutSettings
from models.communications import CommunicationSettings
from models.text import NUL_MESSAGE, NulFree

EVENT: TypeAdapter[Any] = TypeAdapter(ev.Event)
Mode = Literal["edge", "stored"]
MODES: list[Mode] = ["edge", "stored"]  # a client's input, and a workflow history's payload
US = timedelta(microseconds=1)


def validate(body: dict[str, Any], mode: Mode = "edge") -> Any:
    if mode == "stored":
        return EVENT.validate_json(json.dumps(body))
    return EVENT.validate_python(body, context=EDGE)


def errors_at(body: dict[str, Any], field: str, mode: Mode = "edge") -> list[str]:
    """The messages of the errors on `field` (the last part of their location), if any."""
    try:
        validate(body, mode)
    except ValidationError as refused:
        return [e["msg"] for e in refused.errors() if e["loc"] and str(e["loc"][-1]) == field]
    return []


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


LINE = {"description": "Valve", "quantity": "1", "unit_price": "40.00"}
PART = {
    "sku": "V-1",
    "description": "Valve",
    "quantity": 1,
    "supplier": "Ferguson",
    "po_number": "PO-1",
    "expected_delivery": "2030-01-05",
}


# --- dates and times -----------------------------------------------------------------------------


def _valid_until(value: str) -> dict[str, Any]:
    return {"type": "quote_drafted", "lines": [LINE], "valid_until": value}


def _expected_delivery(value: str) -> dict[str, Any]:
    return {"type": "parts_ordered", "parts": [{**PART, "expected_delivery": value}]}


def _approval_expected_at(value: str) -> dict[str, Any]:
    return {"type": "quote_sent", "approval_expected_at": value}


def _window_start(value: str) -> dict[str, Any]:
    # The end is the last moment allowed, so only the start can be wrong.
    return {
        "type": "job_scheduled",
        "technician": "tess",
        "window_start": value,
        "window_end": iso(DATETIME_MAX),
    }


def _window_end(value: str) -> dict[str, Any]:
    return {
        "type": "job_scheduled",
        "technician": "tess",
        "window_start": iso(DATETIME_MIN),
        "window_end": value,
    }


DATE_FIELDS = {"valid_until": _valid_until, "expected_delivery": _expected_delivery}
DATETIME_FIELDS = {
    "approval_expected_at": _approval_expected_at,
    "window_start": _window_start,
    "window_end": _window_end,
}
# Every date and time field the events have, so a new one cannot be missed.
EVENT_DATE_FIELDS = {"valid_until", "expected_delivery", "approval_expected_at"} | {
    "window_start",
    "window_end",
}

DATES_TAKEN = [DATE_MIN.isoformat(), DATE_MAX.isoformat()]
DATES_REFUSED = [
    (DATE_MIN - timedelta(days=1)).isoformat(),
    (DATE_MAX + timedelta(days=1)).isoformat(),
    "0001-01-01",
    "9999-12-31",
]
DATETIMES_TAKEN = [
    "2000-01-01T00:00:00Z",
    "2000-01-01T14:00:00+14:00",  # the same first instant, written in the furthest offset east
    "2100-12-31T23:59:59.999999Z",
    "2100-12-31T11:59:59.999999-12:00",  # the last instant, written furthest west
]
DATETIMES_REFUSED = [
    iso(DATETIME_MIN - US),
    "2000-01-01T13:59:59.999999+14:00",
    iso(DATETIME_MAX + US),
    "2100-12-31T12:00:00-12:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:00:00-12:00",  # past what a datetime in UTC can hold: must not raise
]


def _date_properties(schema: Any) -> set[str]:
    """The properties, at any depth of a JSON schema, that hold a date or a date-time."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for name, prop in schema.get("properties", {}).items():
            if '"format": "date' in json.dumps(prop):
                found.add(name)
        for value in schema.values():
            found |= _date_properties(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= _date_properties(value)
    return found


def test_the_table_names_every_date_field_of_the_events() -> None:
    found = _date_properties(EVENT.json_schema())
    assert found == EVENT_DATE_FIELDS == set(DATE_FIELDS) | set(DATETIME_FIELDS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", DATES_TAKEN)
@pytest.mark.parametrize("field", DATE_FIELDS)
def test_a_date_field_takes_the_first_and_last_day(field: str, value: str, mode: Mode) -> None:
    body = DATE_FIELDS[field](value)
    event = validate(body, mode)
    assert date.fromisoformat(value) in (
        getattr(event, field, None),
        *(getattr(p, field) for p in getattr(event, "parts", [])),
    )


@pytest.mark.parametrize("value", DATES_REFUSED)
@pytest.mark.parametrize("field", DATE_FIELDS)
def test_a_date_field_refuses_a_day_outside(field: str, value: str) -> None:
    messages = errors_at(DATE_FIELDS[field](value), field)
    assert messages and "2000-01-01" in messages[0] and "2100-12-31" in messages[0], messages


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", DATETIMES_TAKEN)
@pytest.mark.parametrize("field", DATETIME_FIELDS)
def test_a_time_field_takes_the_first_and_last_instant(field: str, value: str, mode: Mode) -> None:
    body = DATETIME_FIELDS[field](value)
    assert errors_at(body, field, mode) == []
    if field == "approval_expected_at":  # the others pair with an edge of their own
        assert validate(body, mode).approval_expected_at == datetime.fromisoformat(value)


@pytest.mark.parametrize("value", DATETIMES_REFUSED)
@pytest.mark.parametrize("field", DATETIME_FIELDS)
def test_a_time_field_refuses_an_instant_outside(field: str, value: str) -> None:
    messages = errors_at(DATETIME_FIELDS[field](value), field)
    assert messages and "2000-01-01" in messages[0] and "2100-12-31" in messages[0], messages


@pytest.mark.parametrize(
    "body",
    [DATE_FIELDS[f](v) for f in DATE_FIELDS for v in DATES_REFUSED]
    + [_approval_expected_at(v) for v in DATETIMES_REFUSED]
    + [
        {**_window_start("0001-01-01T09:00:00Z"), "window_end": "0001-01-01T12:00:00Z"},
        {**_window_start("9999-12-31T20:00:00-12:00"), "window_end": "9999-12-31T23:00:00-12:00"},
    ],
)
def test_a_stored_date_from_before_the_bounds_still_reads(body: dict[str, Any]) -> None:
    """A workflow history written before the range existed replays: stored values are read as
    they were written (the reminders take care never to overflow on them)."""
    assert validate(body, "stored").type == body["type"]


def test_the_edge_check_of_a_parsed_event_names_the_field() -> None:
    """The API parses a body, then checks it as a client's input (api/jobs/service.check_event)."""
    parsed = validate(
        {**_window_start("9999-12-31T20:00:00-12:00"), "window_end": "9999-12-31T23:00:00-12:00"},
        "stored",
    )
    with pytest.raises(ValidationError) as refused:
        ev.checked_at_the_edge(parsed)
    assert [e["loc"] for e in refused.value.errors()] == [
        ("job_scheduled", "window_start"),
        ("job_scheduled", "window_end"),
    ]
    fine = validate(_window_start(iso(DATETIME_MIN)), "stored")
    assert ev.checked_at_the_edge(fine) == fine


@pytest.mark.parametrize("value", [1893456000, 1893456000.5, True, ["2030-01-05"], {}])
@pytest.mark.parametrize("field", [*DATE_FIELDS, *DATETIME_FIELDS])
def test_dates_are_iso_text_not_numbers(field: str, value: Any) -> None:
    builder = {**DATE_FIELDS, **DATETIME_FIELDS}[field]
    body = builder("2030-01-05")
    (body["parts"][0] if field == "expected_delivery" else body)[field] = value
    assert errors_at(body, field), (field, value)


def test_a_time_still_needs_its_offset() -> None:
    assert errors_at(_window_end("2030-01-05T12:00:00"), "window_end")


def test_a_window_may_span_the_whole_range() -> None:
    event = validate(_window_start(iso(DATETIME_MIN)))
    assert (event.window_start, event.window_end) == (DATETIME_MIN, DATETIME_MAX)


# --- money and quantities ------------------------------------------------------------------------


def quote(*lines: dict[str, Any]) -> dict[str, Any]:
    return {"type": "quote_drafted", "lines": list(lines)}


def line(quantity: Any = "1", unit_price: Any = "40.00") -> dict[str, Any]:
    return {"description": "Work", "quantity": quantity, "unit_price": unit_price}


def payment(amount: Any) -> dict[str, Any]:
    return {"type": "payment_recorded", "amount": amount, "method": "check"}


def invoice(*lines: dict[str, Any]) -> dict[str, Any]:
    return {"type": "invoice_sent", "lines": list(lines), "override_reason": "extra work"}


MAX = str(MONEY_MAX)
CENT_MORE = str(MONEY_MAX + Decimal("0.01"))
HALF = str(MONEY_MAX / 2)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (quote(line(unit_price=MAX)), "unit_price"),
        (quote(line(quantity=str(QUANTITY_MAX), unit_price="100.00")), "quantity"),
        (quote(line(unit_price=HALF), line(unit_price=HALF)), "lines"),
        (invoice(line(unit_price=HALF), line(unit_price=HALF)), "lines"),
        (payment(MAX), "amount"),
        (quote(line(quantity="0.001", unit_price="0")), "quantity"),
        (payment("0.01"), "amount"),
    ],
    ids=["unit-price", "quantity", "quote-total", "invoice-total", "payment", "least", "cent"],
)
def test_money_takes_the_largest_and_smallest_amounts(
    body: dict[str, Any], field: str, mode: Mode
) -> None:
    validate(body, mode)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (quote(line(unit_price=CENT_MORE)), "unit_price", "at most 10,000,000.00"),
        (quote(line(quantity=str(QUANTITY_MAX + Decimal("0.001")))), "quantity", "100,000"),
        (quote(line(quantity="1000", unit_price="10000.01")), "0", "10,000,000.00"),
        (quote(line(unit_price=HALF), line(unit_price=str(MONEY_MAX / 2 + 1))), "lines", "total"),
        (invoice(line(unit_price=HALF), line(unit_price=CENT_MORE)), "unit_price", "10,000,000.00"),
        (invoice(line(unit_price=HALF), line(unit_price=HALF), line()), "lines", "total"),
        (payment(CENT_MORE), "amount", "at most 10,000,000.00"),
        (payment("0"), "amount", "greater than 0"),
        (payment("-0"), "amount", "greater than 0"),
        (quote(line(unit_price="-0.01")), "unit_price", "greater than or equal to 0"),
        (quote(line(unit_price="40.001")), "unit_price", "2 decimal places"),
        (quote(line(quantity="1.0001")), "quantity", "3 decimal places"),
        # 200 lines of the old largest quantity at the old largest price: 1.99e23 in all.
        (
            quote(*[line(quantity="999999999.999", unit_price="999999999999.99")] * 200),
            "quantity",
            "100,000",
        ),
    ],
    ids=[
        "unit-price",
        "quantity",
        "line-total",
        "quote-total",
        "invoice-line",
        "invoice-total",
        "payment",
        "zero-payment",
        "minus-zero-payment",
        "negative",
        "fraction-of-a-cent",
        "fraction-of-a-thousandth",
        "astronomical-quote",
    ],
)
def test_money_refuses_a_step_outside(body: dict[str, Any], field: str, words: str) -> None:
    messages = errors_at(body, field)
    assert messages and words in messages[0], messages


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "value", [True, "٥", "٤٠.٠٠", " 5", "5 ", "+5", "5.", ".5", "0x10", "1_000", "", "NaN", "1e"]
)
@pytest.mark.parametrize("field", ["unit_price", "quantity"])
def test_amounts_are_json_numbers_or_ascii_decimal_text(field: str, value: Any, mode: Mode) -> None:
    body = quote(line(**{field: value}))
    assert errors_at(body, field, mode), (field, value)


@pytest.mark.parametrize("mode", MODES)
def test_json_numbers_are_taken_as_amounts(mode: Mode) -> None:
    event = validate(
        quote(line(quantity=2.5, unit_price=19.99), line(quantity=3, unit_price=5)), mode
    )
    assert [(it.quantity, it.unit_price) for it in event.lines] == [
        (Decimal("2.5"), Decimal("19.99")),
        (Decimal("3"), Decimal("5")),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_amounts_as_decimal_writes_them_are_taken(mode: Mode) -> None:
    """A stored Decimal may be written with an exponent (str(Decimal("1E+3"))): it reads back."""
    event = validate(quote(line(quantity="1E+1", unit_price="4.0E+1")), mode)
    assert (event.lines[0].quantity, event.lines[0].unit_price) == (10, 40)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", ["-0", "-0.00", -0.0])
def test_minus_zero_reads_as_zero(value: Any, mode: Mode) -> None:
    event = validate(quote(line(unit_price=value)), mode)
    price = event.lines[0].unit_price
    assert price == 0 and not price.is_signed()
    assert not event.model_dump(mode="json")["lines"][0]["unit_price"].startswith("-")


# --- ids and flags -------------------------------------------------------------------------------


def created(client_id: Any) -> dict[str, Any]:
    return {
        "type": "job_created",
        "client_id": client_id,
        "title": "Leak",
        "source": "incoming_call",
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [True, False, "5", "٥", 5.0, 0, -1, ID_MAX + 1, None])
def test_client_id_is_a_strict_id(value: Any, mode: Mode) -> None:
    assert errors_at(created(value), "client_id", mode), value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("value", [1, ID_MAX])
def test_client_id_takes_the_first_and_last_id(value: int, mode: Mode) -> None:
    assert validate(created(value), mode).client_id == value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "tech_dispatched", "notify_customer": "true"}, "notify_customer"),
        ({"type": "tech_dispatched", "notify_customer": 1}, "notify_customer"),
        ({"type": "quote_sent", "sms": "yes"}, "sms"),
        ({**payment("10.00"), "paid_on_site": "false"}, "paid_on_site"),
        ({"type": "parts_ordered", "parts": [{**PART, "quantity": True}]}, "quantity"),
        ({"type": "parts_ordered", "parts": [{**PART, "quantity": "2"}]}, "quantity"),
    ],
    ids=["flag-text", "flag-number", "sms-yes", "paid-on-site-text", "part-qty-bool", "part-qty"],
)
def test_flags_and_counts_are_strict(body: dict[str, Any], field: str, mode: Mode) -> None:
    assert errors_at(body, field, mode)


# --- what a workflow history holds reads back the same --------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        quote(line(quantity="2.5", unit_price="95.00"), line(unit_price=HALF)),
        invoice(line(unit_price=HALF), line(unit_price=HALF)),
        _valid_until(DATE_MAX.isoformat()),
        _expected_delivery(DATE_MIN.isoformat()),
        _approval_expected_at("2100-12-31T11:59:59.999999-12:00"),
        _window_start(iso(DATETIME_MIN)),
        created(ID_MAX),
        payment(MAX),
        {"type": "tech_dispatched", "notify_customer": True},
    ],
    ids=lambda body: body["type"],
)
def test_stored_events_read_back_the_same(body: dict[str, Any]) -> None:
    """A history holds `model_dump(mode="json")` (decimals as text, ids as numbers): the
    workflow's converter must read it back, strict as the models are."""
    event = validate(body)
    assert EVENT.validate_json(json.dumps(event.model_dump(mode="json"))) == event


# --- settings text -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "document", "where"),
    [
        (CommunicationSettings, {"company_name": "Acme\x00"}, "company_name"),
        (CommunicationSettings, {"timezone": "UTC\x00"}, "timezone"),
        (
            CommunicationSettings,
            {"templates": {"quote": {"email_subject": "Hi", "email_body": "A\x00B"}}},
            "templates.quote.email_body",
        ),
        (
            CloseoutSettings,
            {"receipt_fields": [{"key": "serial", "label": "Serial\x00"}]},
            "receipt_fields.0.label",
        ),
        (
            CloseoutSettings,
            {
                "receipt_fields": [
                    {"key": "r", "label": "R", "type": "dropdown", "options": ["R-22\x00"]}
                ]
            },
            "receipt_fields.0.options.0",
        ),
        (BrandingSettings, {"footer": "Net 30\x00"}, "footer"),
        (BrandingSettings, {"address": "1 Main St\x00"}, "address"),
        (BrandingSettings, {"currency_symbol": "\x00"}, "currency_symbol"),
        (BrandingSettings, {"colour\x00": "#fff"}, "colour"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_settings_refuse_nul_anywhere_and_say_where(
    model: type[Any], document: dict[str, Any], where: str
) -> None:
    as_sent: TypeAdapter[Any] = TypeAdapter(Annotated[model, NulFree])  # as the routes take them
    with pytest.raises(ValidationError) as refused:
        as_sent.validate_python(document)
    message = str(refused.value)
    assert where in message and NUL_MESSAGE in message, message
    if where in ("colour", "timezone"):
        return  # refused without the NUL too: an unknown key, an unknown zone
    # The same document without the NUL is taken; one stored with it is still read.
    as_sent.validate_python(json.loads(json.dumps(document).replace("\\u0000", "")))
    model.model_validate(document)
