"""Closeout settings (DESIGN.md §4 "Closeout settings", §6) and the receipt fields' checks.

Pure: no I/O. Stored as the `closeout` settings document. `validate_receipt_fields` is what
`job_completed` uses to refuse completion data that misses or misuses a configured field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from models.bounds import MONEY_MAX, date_problem, parse_decimal

Channel = Literal["email", "sms", "both"]
FieldType = Literal["text", "number", "currency", "date", "dropdown", "checkbox"]
FIELD_TYPES: tuple[str, ...] = FieldType.__args__  # type: ignore[attr-defined]

_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # what the message asks for; not 20300105
MAX_TEXT = 2000
SECRET_MIN = 16


def _slug_key(value: str) -> str:
    if not _KEY.match(value):
        raise ValueError(
            f"key {value!r} must be lower-case letters, digits and underscores, "
            "starting with a letter (like serial_number)"
        )
    return value


def _web_url(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("webhook_url is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook_url must be an http:// or https:// URL with a host")
    if any(c.isspace() for c in value):
        raise ValueError("webhook_url must not contain spaces")
    return value


Key = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=63),
    AfterValidator(_slug_key),
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
WebUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_web_url),
]
Secret = Annotated[str, StringConstraints(min_length=SECRET_MIN, max_length=256)]


class ReceiptField(BaseModel):
    """One field the technician fills in on completion; printed on the work receipt."""

    model_config = ConfigDict(extra="forbid")

    key: Key
    label: Label
    type: FieldType = "text"
    required: bool = False
    options: Annotated[list[Option], Field(max_length=100)] = []

    @model_validator(mode="after")
    def _options_for_dropdowns_only(self) -> ReceiptField:
        if self.type == "dropdown":
            if not self.options:
                raise ValueError(f"receipt field {self.key!r} is a dropdown: give it options")
            if len(set(self.options)) != len(self.options):
                raise ValueError(f"receipt field {self.key!r} lists an option twice")
        elif self.options:
            raise ValueError(
                f"receipt field {self.key!r} is {self.type}: only dropdown fields have options"
            )
        return self


class CloseoutFields(BaseModel):
    """The settings' fields, each checked on its own (the webhook pair is checked together in
    `CloseoutSettings`)."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel = "email"
    receipt_fields: Annotated[list[ReceiptField], Field(max_length=50)] = []
    portal_link_days: Annotated[int, Field(ge=1, le=365)] = 30
    webhook_url: WebUrl | None = None
    webhook_secret: Secret | None = None

    @field_validator("receipt_fields")
    @classmethod
    def _unique_keys(cls, value: list[ReceiptField]) -> list[ReceiptField]:
        seen: set[str] = set()
        for field in value:
            if field.key in seen:
                raise ValueError(f"two receipt fields have the key {field.key!r}; keys are unique")
            seen.add(field.key)
        return value


class CloseoutSettings(CloseoutFields):
    @model_validator(mode="after")
    def _webhook_has_secret(self) -> CloseoutSettings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                f"webhook_secret is required (at least {SECRET_MIN} characters) when "
                "webhook_url is set: the webhook is signed with it"
            )
        return self

    def field(self, key: str) -> ReceiptField | None:
        return next((f for f in self.receipt_fields if f.key == key), None)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _decimal(value: Any) -> Decimal | None:
    """A number as receipt values were read before models.bounds (stored histories)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _day(value: Any, bounded: bool) -> date | None:
    try:
        if bounded and not _DATE.fullmatch(value):
            return None  # what the message asks for; not 20300105 nor 2030-W01-1
        return date.fromisoformat(value)
    except (ValueError, TypeError):
        return None


def _problem(field: ReceiptField, value: Any, bounded: bool) -> str | None:
    name = f"{field.label} ({field.key})"
    # Bounded: numbers and money read as the events read them, money and dates in their range.
    number = parse_decimal if bounded else _decimal
    if field.type == "text":
        if not isinstance(value, str):
            return f"{name} must be text"
        if len(value) > MAX_TEXT:
            return f"{name} is longer than {MAX_TEXT} characters"
    elif field.type == "number":
        if number(value) is None:
            return f"{name} must be a number (the digits 0-9, like 12.5)"
    elif field.type == "currency":
        amount = number(value)
        if amount is None:
            return f"{name} must be an amount of money (like 125.50)"
        if amount < 0:
            return f"{name} must not be negative"
        if -amount.as_tuple().exponent > 2:  # type: ignore[operator]
            return f"{name} has more than two decimal places"
        if bounded and amount > MONEY_MAX:
            return f"{name} must be at most {MONEY_MAX:,.2f}"
    elif field.type == "date":
        day = _day(value, bounded)
        if day is None:
            return f"{name} must be a date (YYYY-MM-DD)"
        if bounded and (problem := date_problem(day)):
            return f"{name} {problem}"
    elif field.type == "dropdown":
        if not isinstance(value, str) or value not in field.options:
            return f"{name}: {value!r} is not one of the options: {', '.join(field.options)}"
    elif field.type == "checkbox" and not isinstance(value, bool):
        return f"{name} must be true or false"
    return None


def validate_receipt_fields(settings: CloseoutSettings | JobCloseout, fields: Any) -> list[str]:
    """What is wrong with the receipt fields of a completion, one message a problem (empty: fine).

    A required field must be present and not empty (a required checkbox must be given, true or
    false); an optional field may be left out or null; keys not configured are refused."""
    bounded = settings.bounded if isinstance(settings, JobCloseout) else True
    return validate_field_values(settings.receipt_fields, fields, bounded=bounded)


def validate_field_values(
    configured: Sequence[ReceiptField],
    fields: Any,
    *,
    bounded: bool = True,
    noun: str = "receipt field",
) -> list[str]:
    """What is wrong with values given for configured fields (receipt fields, a job result's
    fields), one message a problem naming the field; empty: fine."""
    if not isinstance(fields, dict):
        return [f"fields must be an object of {noun} values"]
    problems: list[str] = []
    known = {f.key for f in configured}
    for key in fields:
        if key not in known:
            listed = ", ".join(sorted(known)) or "none are configured"
            problems.append(f"unknown {noun} {key!r} (known: {listed})")
    for field in configured:
        value = fields.get(field.key)
        if _empty(value):
            if field.required:
                problems.append(f"{field.label} ({field.key}) is required")
            continue
        problem = _problem(field, value, bounded)
        if problem:
            problems.append(problem)
    return problems


class JobCloseout(BaseModel):
    """What a job workflow needs of the closeout settings: the settings without the webhook's
    URL and secret (which the webhook activity reads for itself), so no secret enters workflow
    history."""

    channel: Channel = "email"
    receipt_fields: list[ReceiptField] = []
    portal_link_days: int = 30
    webhook: bool = False
    # Receipt values are held to models.bounds (numbers in the ASCII digits, money at most
    # 10,000,000.00, dates from 2000 to 2100) when this comes from today's settings. A closeout
    # in a workflow history from before the bounds has no such flag, and replays as it ran.
    bounded: bool = False

    @classmethod
    def of(cls, settings: CloseoutSettings) -> JobCloseout:
        return cls(
            channel=settings.channel,
            receipt_fields=settings.receipt_fields,
            portal_link_days=settings.portal_link_days,
            webhook=settings.webhook_url is not None,
            bounded=True,
        )

    def labels(self) -> dict[str, str]:
        return {f.key: f.label for f in self.receipt_fields}
