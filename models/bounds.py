"""What Jobline takes at its edge: the range of dates, money and ids, defined once (issue 8).

- **Dates and times**: from 2000-01-01 to 2100-12-31 (a time: 2000-01-01T00:00:00Z to
  2100-12-31T23:59:59.999999Z, whatever its offset; it must carry one). A field-service job is
  booked, quoted, delivered and paid within that span, so a year 1 or 9999 is a typo. It also
  keeps every reminder's arithmetic (a day before, the end of a day in the company's zone, 90 days
  on) and every workflow timer far inside what Python and Temporal can hold. Written as ISO 8601
  text, never as a number.
- **Money**: two decimal places, not negative, at most 10,000,000.00 — for a unit price, a line,
  a quote's or an invoice's total (and so a contract amount) and a payment. **Quantities**: more
  than 0, at most 100,000, three decimal places. Both arrive as JSON numbers or as decimal text
  of the ASCII digits ("125.50"); `true`, "٥", "1e3" or " 5" are refused, and -0 is read as 0.
- **Ids**: integers from 1 to 2**31 - 1 (the tables' integer columns). In a JSON body a JSON
  integer (never `true` nor "5"); in a path or a query, the ASCII digits.

Pure: no I/O. The event payloads (models/events.py), the closeout receipt fields and the API's
parameters use these types; the reminders are property-tested over this range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Gt, Le
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, Strict

DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2100, 12, 31)
DATETIME_MIN = datetime(2000, 1, 1, tzinfo=UTC)
DATETIME_MAX = datetime(2100, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)

MONEY_MAX = Decimal("10000000.00")
CENT = Decimal("0.01")
QUANTITY_MAX = 100_000
ID_MAX = 2**31 - 1

_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # [0-9], not \d: ASCII digits only
_DIGITS = re.compile(r"[0-9]+")


# --- dates and times ---------------------------------------------------------------------------


def _iso_text(value: Any) -> Any:
    # A number would be read as seconds since 1970 and a bool as 0 or 1: neither is a date.
    if isinstance(value, str | date):  # datetime is a date
        return value
    raise ValueError("write it as ISO 8601 text, like 2030-01-05 or 2030-01-05T09:00:00-05:00")


def _date_in_range(value: date) -> date:
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(f"must be from {DATE_MIN} to {DATE_MAX}")
    return value


def _datetime_in_range(value: datetime) -> datetime:
    # Compared, not converted: year 9999 at -12:00 is past what a datetime in UTC can hold.
    if not DATETIME_MIN <= value <= DATETIME_MAX:
        raise ValueError(f"must be from {DATE_MIN}T00:00:00Z to the end of {DATE_MAX} (UTC)")
    return value


BoundedDate = Annotated[date, BeforeValidator(_iso_text), AfterValidator(_date_in_range)]
BoundedDatetime = Annotated[
    AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_datetime_in_range)
]


def date_problem(value: date) -> str | None:
    """Why a date is out of range (for checks that collect messages rather than raise)."""
    try:
        _date_in_range(value)
    except ValueError as out:
        return str(out)
    return None


# --- money and quantities ----------------------------------------------------------------------


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


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(ge=0, le=MONEY_MAX, decimal_places=2),
    AfterValidator(_no_negative_zero),
]
PositiveMoney = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(gt=0, le=MONEY_MAX, decimal_places=2),
]
Quantity = Annotated[
    Decimal,
    BeforeValidator(_decimal_input),
    Field(gt=0, le=QUANTITY_MAX, decimal_places=3),
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
IdParam = Annotated[int, BeforeValidator(_digits), Gt(0), Le(ID_MAX)]
