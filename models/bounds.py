"""What Jobline takes at its edge: the range of dates, money and ids, defined once (issue 8).

- **Dates and times**: from 2000-01-01 to 2100-12-31 (a time: 2000-01-01T00:00:00Z to the end
  of 2100-12-31 UTC, whatever its offset; it must carry one). A field-service job is booked,
  quoted, delivered and paid within that span, so a year 1 or 9999 is a typo. The span also keeps
  every reminder's arithmetic (a day before, the end of a day in the company's zone, 90 days on)
  far inside what a datetime holds, and every workflow timer inside Temporal's 100 years.
- **Money**: two decimal places, not negative, at most 10,000,000.00 — a unit price, a line, a
  quote's or an invoice's total (and so a contract amount), a payment. **Quantities**: more than
  0, at most 100,000, three decimal places.
- **Ids**: integers from 1 to 2**31 - 1 (the tables' integer columns).

Two kinds of rule, because a workflow history and a job row must read back whatever was stored
before a rule existed (replay, tests/workflows/test_replay.py):

- *Form*, always: ids and counts are JSON integers (never `true` nor "5"), flags JSON booleans;
  amounts are JSON numbers or decimal text in the ASCII digits (as Decimal writes it: "125.50",
  "1E+3"), never `true`, "٥" or " 5", and -0 reads as 0; dates are ISO 8601 text, never a number.
  Stored payloads always had this form: they are what the models wrote.
- *Range*, at the edge: the ranges above apply when a model is validated with `context=EDGE` —
  what a client sends (api/jobs/service.check_event). A stored value from before is read as it
  was written.

In a path or a query an id is text: `IdParam` takes the ASCII digits only (not "+5", " 5", "5_0").

Pure: no I/O. The reminders are property-tested over this range (tests/models/test_reminders.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Gt, Le
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    Strict,
    ValidationInfo,
)

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2100, 12, 31)
DATETIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime(2100, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)

MONEY_MAX = Decimal("10000000.00")
QUANTITY_MAX = 100_000
ID_MAX = 2**31 - 1
CENT = Decimal("0.01")

# The validation context of what a client sends: `Model.model_validate(data, context=EDGE)`.
EDGE: dict[str, Any] = {"edge": True}

# [0-9], not \d: ASCII digits only. The exponent is how Decimal writes some values ("1E+3").
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_DIGITS = re.compile(r"[0-9]+")


def at_the_edge(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("edge"))


# --- dates and times -----------------------------------------------------------------------------


def _iso_text(value: Any) -> Any:
    # A number would be read as seconds since 1970 and a bool as 0 or 1: neither is a date.
    if isinstance(value, str | date):  # a datetime is a date
        return value
    raise ValueError("write it as ISO 8601 text, like 2030-01-05 or 2030-01-05T09:00:00-05:00")


def date_problem(value: date) -> str | None:
    """Why a date is outside the range, if it is."""
    if DATE_MIN <= value <= DATE_MAX:
        return None
    return f"must be from {DATE_MIN} to {DATE_MAX}"


def _date_in_range(value: date, info: ValidationInfo) -> date:
    if at_the_edge(info) and (problem := date_problem(value)):
        raise ValueError(problem)
    return value


def _datetime_in_range(value: datetime, info: ValidationInfo) -> datetime:
    # Compared, not converted: year 9999 at -12:00 is past what a datetime in UTC can hold.
    if at_the_edge(info) and not DATETIME_MIN <= value <= DATETIME_MAX:
        raise ValueError(f"must be from {DATE_MIN}T00:00:00Z to the end of {DATE_MAX} (UTC)")
    return value


BoundedDate = Annotated[date, BeforeValidator(_iso_text), AfterValidator(_date_in_range)]
BoundedDatetime = Annotated[
    AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_datetime_in_range)
]


# --- money and quantities ------------------------------------------------------------------------


def _decimal_input(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise ValueError("must be a decimal number in the digits 0-9, like 125.50")
        return Decimal(value)
    if isinstance(value, int | float | Decimal):
        return value
    raise ValueError("must be a number, or decimal text like 125.50")


def _no_negative_zero(value: Decimal) -> Decimal:
    return value.copy_abs() if value.is_zero() else value


def _at_most(limit: Decimal | int, shown: str) -> Any:
    def check(value: Decimal, info: ValidationInfo) -> Decimal:
        if at_the_edge(info) and value > limit:
            raise ValueError(f"must be at most {shown}")
        return value

    return AfterValidator(check)


# A BeforeValidator wraps what precedes it: the form is checked first, and the constraints stay on
# the decimal itself (where the OpenAPI schema shows them). The digit limits are the ones stored
# values always had; the range is the edge's.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=14, decimal_places=2),
    BeforeValidator(_decimal_input),
    AfterValidator(_no_negative_zero),
    _at_most(MONEY_MAX, f"{MONEY_MAX:,.2f}"),
]
PositiveMoney = Annotated[
    Decimal,
    Field(gt=0, max_digits=14, decimal_places=2),
    BeforeValidator(_decimal_input),
    _at_most(MONEY_MAX, f"{MONEY_MAX:,.2f}"),
]
Quantity = Annotated[
    Decimal,
    Field(gt=0, max_digits=12, decimal_places=3),
    BeforeValidator(_decimal_input),
    _at_most(QUANTITY_MAX, f"{QUANTITY_MAX:,}"),
]
WholeQuantity = Annotated[int, Strict(), Field(gt=0, le=QUANTITY_MAX)]


def parse_decimal(value: Any) -> Decimal | None:
    """A number as `Money` and `Quantity` read it, or None if it is not one (for checks that
    collect messages rather than raise: the receipt fields' numbers and currency)."""
    try:
        checked = _decimal_input(value)
    except ValueError:
        return None
    number = Decimal(str(checked)) if isinstance(checked, float) else Decimal(checked)
    return _no_negative_zero(number) if number.is_finite() else None


def total_problem(amounts: Iterable[Decimal], what: str = "the total") -> str | None:
    """Why a document's amounts add up to more than one document may hold, if they do."""
    total = sum(amounts, Decimal("0.00"))
    if total > MONEY_MAX:
        return f"{what} {total:,.2f} is more than {MONEY_MAX:,.2f}, the most one document holds"
    return None


# --- ids -----------------------------------------------------------------------------------------


def _digits(value: Any) -> Any:
    # FastAPI hands path and query values over as text; int() would also take "+5", " 5", "5_0".
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("must be a whole number in the digits 0-9")
    return value


Id = Annotated[int, Strict(), Gt(0), Le(ID_MAX)]
IdParam = Annotated[int, Gt(0), Le(ID_MAX), BeforeValidator(_digits)]
