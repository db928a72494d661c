"""Job resulting (DESIGN.md §6 "Job resulting"): the settings, a result's checks and its revisions.

Pure: no I/O. A job is resulted as a Sale or a No Sale with the fields the admin configured for
that type; each submission is a new revision of the job's result and every earlier one is kept
(the tool this replaces overwrote them). The settings are the `resulting` settings document.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.bounds import parse_decimal
from models.closeout import ReceiptField, validate_field_values
from models.events import Email

ResultType = Literal["sale", "no_sale"]
RESULT_TYPES: tuple[ResultType, ...] = ("sale", "no_sale")
TYPE_LABELS: dict[str, str] = {"sale": "Sale", "no_sale": "No Sale"}

# Named layouts of the result document and email. "standard": a letter-like page with the job,
# client and every field in a table; "compact": a one-glance summary card of the outcome and the
# fields set, for inboxes that see many results a day.
PATTERNS: dict[str, str] = {
    "standard": "Standard: the job, the client and every field in a table",
    "compact": "Compact: a one-glance summary of the outcome and the fields that were filled in",
}
MAX_RECIPIENTS = 20


class ResultField(ReceiptField):
    """A field of a result type. As a receipt field, with one more rule: a dropdown is a choice,
    so it has at least two options."""

    @model_validator(mode="after")
    def _options_for_dropdowns_only(self) -> ResultField:
        if self.type == "dropdown":
            if len(self.options) < 2:
                raise ValueError(f"field {self.key!r} is a dropdown: give it at least two options")
            if len(set(self.options)) != len(self.options):
                raise ValueError(f"field {self.key!r} lists an option twice")
        elif self.options:
            raise ValueError(f"field {self.key!r} is {self.type}: only dropdowns have options")
        return self


class ResultTypeSettings(BaseModel):
    """One result type: its pattern, who is emailed, and its fields (at least one)."""

    model_config = ConfigDict(extra="forbid")

    pattern: str = "standard"
    recipients: Annotated[list[Email], Field(max_length=MAX_RECIPIENTS)] = []
    fields: Annotated[list[ResultField], Field(min_length=1, max_length=50)]

    @field_validator("pattern")
    @classmethod
    def _known_pattern(cls, value: str) -> str:
        if value not in PATTERNS:
            raise ValueError(f"unknown pattern {value!r} (known: {', '.join(PATTERNS)})")
        return value

    @field_validator("fields")
    @classmethod
    def _unique_keys(cls, value: list[ResultField]) -> list[ResultField]:
        seen: set[str] = set()
        for field in value:
            if field.key in seen:
                raise ValueError(f"two fields have the key {field.key!r}; keys are unique")
            seen.add(field.key)
        return value

    @property
    def amount_field(self) -> ResultField | None:
        """The field whose value is the result's amount in reports: the first currency field."""
        return next((f for f in self.fields if f.type == "currency"), None)


class ResultTypes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sale: ResultTypeSettings = ResultTypeSettings(
        fields=[
            ResultField(key="sale_amount", label="Sale amount", type="currency", required=True),
            ResultField(key="notes", label="Notes", type="text"),
        ]
    )
    no_sale: ResultTypeSettings = ResultTypeSettings(
        fields=[
            ResultField(
                key="loss_reason",
                label="Why we lost it",
                type="dropdown",
                required=True,
                options=["Price", "Timing", "Went with competitor", "No longer needed"],
            ),
            ResultField(key="notes", label="Notes", type="text"),
        ]
    )

    def of(self, result_type: str) -> ResultTypeSettings:
        return self.sale if result_type == "sale" else self.no_sale


class ResultingSettings(BaseModel):
    """The `resulting` settings document (DESIGN.md §4). Off until an admin turns it on."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    unresulted_after_days: Annotated[int, Field(ge=1, le=365)] = 7
    types: ResultTypes = ResultTypes()

    @model_validator(mode="after")
    def _recipients_when_enabled(self) -> ResultingSettings:
        if self.enabled:
            for name in RESULT_TYPES:
                if not self.types.of(name).recipients:
                    raise ValueError(
                        f"{TYPE_LABELS[name]} ({name}) has no recipients: resulting is enabled, "
                        "so each type needs at least one address to email its results to"
                    )
        return self


def field_problems(settings: ResultingSettings, result_type: str, fields: Any) -> list[str]:
    """What is wrong with a submission's fields under today's settings, one message a problem
    naming the field (empty: fine). A required field must be given and not empty; an optional one
    may be left out or null; a key that is not configured is refused."""
    if result_type not in RESULT_TYPES:
        return [f"type must be one of: {', '.join(RESULT_TYPES)}"]
    return validate_field_values(
        settings.types.of(result_type).fields, fields, noun=f"{TYPE_LABELS[result_type]} field"
    )


def normalised(type_settings: ResultTypeSettings, fields: dict[str, Any]) -> dict[str, Any]:
    """The checked values as they are kept: money as a decimal string with two places, numbers as
    decimal strings, text stripped, empty optional fields left out."""
    kept: dict[str, Any] = {}
    for field in type_settings.fields:
        value = fields.get(field.key)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if field.type == "currency":
            amount = parse_decimal(value)
            assert amount is not None  # checked by field_problems
            kept[field.key] = str(amount.quantize(Decimal("0.01")))
        elif field.type == "number":
            number = parse_decimal(value)
            assert number is not None
            kept[field.key] = format(number, "f")  # 2e3 is kept as 2000
        elif isinstance(value, str):
            kept[field.key] = value.strip()
        else:
            kept[field.key] = value
    return kept


class ResultSubmission(BaseModel):
    """A checked submission on its way to the job's resulting workflow: the values and what the
    settings said of its type at that moment (labels, pattern, recipients), so a later settings
    change never rewrites what a revision was."""

    type: ResultType
    fields: dict[str, Any]
    submitted_by: str
    # The type's fields as configured at that moment, in order (labels, types, options).
    form: list[ResultField]
    pattern: str
    recipients: list[str]
    amount: Decimal | None = None
    # The API request's digest (api/idempotency.py): a retry under the same key must match it.
    request_digest: str | None = None


class ResultRevision(BaseModel):
    """One revision of a job's result (DESIGN.md §4 "A result revision")."""

    revision: int
    type: ResultType
    fields: dict[str, Any]
    submitted_by: str
    submitted_at: datetime
    document_id: str | None = None
    form: list[ResultField] = []
    pattern: str = "standard"
    amount: Decimal | None = None


def submission(
    settings: ResultingSettings, result_type: ResultType, fields: dict[str, Any], username: str
) -> ResultSubmission:
    """A checked submission (call `field_problems` first) with its settings attached."""
    type_settings = settings.types.of(result_type)
    kept = normalised(type_settings, fields)
    amount_field = type_settings.amount_field
    amount = None
    if amount_field is not None and amount_field.key in kept:
        amount = Decimal(kept[amount_field.key])
    return ResultSubmission(
        type=result_type,
        fields=kept,
        submitted_by=username,
        form=list(type_settings.fields),
        pattern=type_settings.pattern,
        recipients=list(type_settings.recipients),
        amount=amount,
    )


def unresulted_due(clock_started_at: datetime, settings: ResultingSettings) -> datetime:
    """When a job with no result counts as unresulted: N days after its quote was sent (or after
    it was canceled, for a job canceled before any quote went)."""
    return clock_started_at + timedelta(days=settings.unresulted_after_days)


# --- what the resulting workflow and its activities exchange (ids and small values only) ------

# Activity names, so the workflow calls them without importing the activities' I/O modules.
LOAD_RESULTING_SETTINGS = "load_resulting_settings"
RECORD_RESULT = "record_result"
RENDER_RESULT_DOCUMENT = "render_result_document"
ATTACH_RESULT_DOCUMENT = "attach_result_document"
QUEUE_RESULT_EMAIL = "queue_result_email"
MARK_RESULTING_DUE = "mark_resulting_due"
FLAG_UNRESULTED = "flag_unresulted"
START_RESULTING_CLOCK = "start_resulting_clock"


def resulting_workflow_id(slug: str) -> str:
    return f"result-{slug}"


class ResultingInput(BaseModel):
    """The resulting workflow's start (and continue-as-new) input."""

    slug: str
    revisions: list[ResultRevision] = []
    # When the unresulted clock started: the quote first sent, or the job canceled.
    clock_started_at: datetime | None = None
    # The clock has rung (flagged, or resulting was off then): it does not ring again.
    clock_done: bool = False
    flagged: bool = False
    # Update ids already answered, with their revision and request digest (continue-as-new
    # carries them): a retried submission is answered again, never recorded twice.
    recent_updates: dict[str, tuple[int, str | None]] = {}
    pending_deliveries: list[int] = []


class ResultingClock(BaseModel):
    """The job workflow's word that a job's unresulted clock starts (quote sent, canceled)."""

    slug: str
    at: datetime
    task_queue: str


class RecordedResult(BaseModel):
    slug: str
    revision: ResultRevision
    # Who the revision is emailed to (the type's recipients when it was submitted).
    recipients: list[str] = []


class ResultOutcome(BaseModel):
    """The submission Update's answer: the revision made, and the digest of the request that
    made it (api/idempotency.py: a retry under the same key must be the same request)."""

    revision: ResultRevision
    request_digest: str | None = None


class UnresultedReminder(BaseModel):
    slug: str
    due_at: datetime


class ResultDocument(BaseModel):
    slug: str
    revision: int
    document_id: str
