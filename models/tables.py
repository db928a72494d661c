"""Database tables: users and tokens, clients, and the projection of each job.

The job rows are a *projection*: the job workflow owns the truth and writes here through the
projection activity after every accepted event, guarded by the event sequence number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Numeric,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back with their offset.

    PostgreSQL keeps the zone itself; SQLite keeps none, so values are normalised to UTC on the
    way in and marked UTC on the way out. The API then always says when, with an offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def _ts(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    email: str = Field(max_length=254)
    role: str = Field(max_length=16)
    # How customers and colleagues read this person ("Tess Turner"); empty: the username.
    display_name: str = Field(default="", max_length=120)
    # argon2id; None: this user signs in with bearer tokens only (no web sign-in).
    password_hash: str | None = Field(default=None, max_length=255)
    # A disabled user can neither sign in nor use a token (`jobline user disable`).
    active: bool = Field(default=True)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class WebSession(SQLModel, table=True):
    """A person's signed-in browser. The cookie's token is stored only as a SHA-256 hash; the
    CSRF secret is per session and goes in every form's hidden input."""

    __tablename__ = "web_sessions"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    expires_at: datetime = _ts(nullable=False)


class UserInvite(SQLModel, table=True):
    """A one-time link an admin gives a new person to set their password. Stored as a SHA-256
    hash; used once (`used_at`), and dead after `expires_at`."""

    __tablename__ = "user_invites"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    expires_at: datetime = _ts(nullable=False)
    used_at: datetime | None = _ts(nullable=True)


class ApiToken(SQLModel, table=True):
    """Bearer tokens are stored as SHA-256 hashes: a leaked table grants nothing."""

    __tablename__ = "api_tokens"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    label: str = Field(default="", max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class Client(SQLModel, table=True):
    __tablename__ = "clients"
    # The list by tier, in name order (migration 0015; search: its trigram indexes).
    __table_args__ = (Index("ix_clients_tier", "tier", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, index=True)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    tier: str = Field(default="standard", max_length=16)
    billing_email: str | None = Field(default=None, max_length=254)
    address: str = Field(default="", max_length=500)
    notes: str = Field(default="", max_length=4000)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)

    @property
    def client_number(self) -> str:
        return f"C-{self.id:05d}"


class Job(SQLModel, table=True):
    """One row per job: the columns lists and reports filter on, plus the whole state as JSON."""

    __tablename__ = "jobs"
    __table_args__ = (
        # The board's columns: one milestone's cards, flagged first, most recently changed next.
        Index("ix_jobs_board_column", "milestone", "stuck", "updated_at", "slug"),
        # The board's tally (count, money and attention per stage) read from the index alone.
        Index(
            "ix_jobs_board_tally",
            "stage",
            "stuck",
            "quote_stale",
            "parts_overdue",
            "unpaid",
            "owner",
            "amount",
            "unresulted",  # migration 0015
        ),
        # Lists in their order, most recently changed first (the board's list, the API's), the
        # slug breaking ties (api/jobs/service.py LIST_ORDER; with it since migration 0017).
        Index("ix_jobs_updated_at", "updated_at", "slug"),
        # The reports' current results of a kind in a period, counted and summed from the index
        # alone (migration 0011; owner and amount since 0016).
        Index("ix_jobs_result", "result_type", "resulted_at", "owner", "result_amount"),
        # A job's owner, current result revision and contract amount from the index alone, for
        # the reports that join messages, results and events to their job (migration 0016): the
        # table is wide.
        Index("ix_jobs_slug_owner", "slug", "owner", "result_revision", "contract_amount"),
        # The jobs due a result, soonest due first (the resulting report's list; 0016).
        Index("ix_jobs_unresulted_due", "unresulted", "resulting_due_at", "slug"),
        # The list's filters, each in the list's order (migration 0015; the text search's
        # trigram indexes are PostgreSQL's only, made there and not declared here).
        Index("ix_jobs_owner", "owner", "updated_at", "slug"),
        # a technician's jobs too
        Index("ix_jobs_assigned_tech", "assigned_tech", "updated_at", "slug"),
        Index("ix_jobs_waiting_on", "waiting_on", "updated_at", "slug"),
        Index("ix_jobs_quote_stale", "quote_stale", "updated_at", "slug"),
        Index("ix_jobs_parts_overdue", "parts_overdue", "updated_at", "slug"),
        Index("ix_jobs_unpaid", "unpaid", "updated_at", "slug"),
        Index("ix_jobs_unresulted", "unresulted", "updated_at", "slug"),
        Index("ix_jobs_created_at", "created_at"),  # the reports' jobs created in a period ...
        Index("ix_jobs_result_revision", "result_revision"),  # ... and resulted more than once
    )

    slug: str = Field(primary_key=True, max_length=32)
    seq: int = Field(default=0)
    number: int | None = Field(default=None, index=True)
    title: str = Field(default="", max_length=200)
    client_id: int = Field(foreign_key="clients.id", index=True)
    client_name: str = Field(default="", max_length=200)
    stage: str = Field(max_length=32, index=True)
    milestone: str = Field(max_length=16, index=True)
    owner: str | None = Field(default=None, max_length=64)
    assigned_tech: str | None = Field(default=None, max_length=64)
    priority: str = Field(default="standard", max_length=16)
    waiting_on: str = Field(default="", max_length=32)
    stuck: bool = Field(default=False, index=True)
    contract_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    created_at: datetime = _ts(nullable=False)
    updated_at: datetime = _ts(nullable=False)
    stage_entered_at: datetime = _ts(nullable=False)
    next_reminder_at: datetime | None = _ts(nullable=True)
    state: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Where in the workflow's history this row was written (see activities/projection.py).
    position: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # What the board counts and sums, from the state by models/board.py (migration 0009).
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    quote_stale: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    parts_overdue: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    unpaid: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    # The job's result (migration 0010), written by the resulting workflow's activities, never by
    # the projection: the current revision's type, amount and time, and whether the job is
    # overdue for one (`unresulted`, from `resulting_due_at` on).
    result_type: str | None = Field(default=None, max_length=16)
    result_revision: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    result_amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    resulted_at: datetime | None = _ts(nullable=True)
    resulting_due_at: datetime | None = _ts(nullable=True)
    unresulted: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class JobEvent(SQLModel, table=True):
    """The job's timeline: one row per accepted event, written with the projection."""

    __tablename__ = "job_events"
    __table_args__ = (
        UniqueConstraint("job_slug", "seq"),
        # The reports' (migration 0011): one kind of event in a period (approvals, cancels).
        Index("ix_job_events_type_at", "type", "at", "job_slug", "seq"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(foreign_key="jobs.slug", index=True, max_length=32)
    seq: int
    type: str = Field(max_length=32)
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=16)
    at: datetime = _ts(nullable=False)
    summary: str = Field(default="", max_length=500)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The Update that applied the event: a client's retry with the same Idempotency-Key finds it.
    request_id: str | None = Field(default=None, max_length=64, index=True)
    # The job's stage once the event was applied (migration 0010; reports' time in stage and
    # conversion). Null for events recorded before it, except each job's latest.
    stage: str | None = Field(default=None, max_length=32)


class JobStageVisit(SQLModel, table=True):
    """One visit of a job to a stage: from the event that moved it there to the next that moved
    it elsewhere (`left_at` NULL while it is still there). Written by the projection with the
    timeline (core/stage_visits.py), read by the reports' time in stage (migration 0012)."""

    __tablename__ = "job_stage_visits"
    __table_args__ = (
        UniqueConstraint("job_slug", "entered_at", "stage"),
        # Time in stage: the visits of a period, stage by stage ...
        Index("ix_job_stage_visits_entered", "entered_at", "stage"),
        # ... each stage's finished visits counted by bucket, and a bucket's lengths read ...
        Index("ix_job_stage_visits_lengths", "stage", "bucket", "seconds"),
        # ... and the visits going on (one a job at most), measured up to now.
        Index(
            "ix_job_stage_visits_open",
            "stage",
            "entered_at",
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
        # ... the finished visits of each stage by bucket, from the index alone (migration 0015).
        Index(
            "ix_job_stage_visits_ended",
            "stage",
            "bucket",
            postgresql_where=text("left_at IS NOT NULL"),
            sqlite_where=text("left_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(max_length=32, index=True)
    stage: str = Field(max_length=32)
    entered_at: datetime = _ts(nullable=False)
    left_at: datetime | None = _ts(nullable=True)
    # Once it ended: its length, and the length's bucket (core/stage_visits.py `bucket_of`).
    seconds: float | None = Field(default=None)
    bucket: int | None = Field(default=None)


class JobNumber(SQLModel, table=True):
    """Job numbers are handed out in order, once per job: the row's id is the number."""

    __tablename__ = "job_numbers"

    number: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(max_length=32, unique=True)
    assigned_at: datetime = _ts(nullable=False, default=utcnow)


class Setting(SQLModel, table=True):
    """A settings document (communications, resulting, closeout), validated by its model."""

    __tablename__ = "settings"

    name: str = Field(primary_key=True, max_length=32)
    value: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(default="", max_length=64)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class OutboxMessage(SQLModel, table=True):
    """Every message Jobline sends, whatever the backend: the job's communication history.

    `idempotency_key` (workflow id, event sequence, purpose, channel) is unique, so a retried,
    replayed or restarted send finds its row instead of making a second message.
    """

    __tablename__ = "outbox_messages"
    # The reports' (migration 0011): each job's messages of a purpose (quote follow-ups), in time.
    # The list, newest first, and by channel (migration 0015; search: its trigram indexes).
    __table_args__ = (
        Index("ix_outbox_messages_purpose_job", "purpose", "job_slug", "created_at"),
        Index("ix_outbox_messages_created", "created_at", "id"),
        Index("ix_outbox_messages_channel", "channel", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    job_slug: str | None = Field(default=None, max_length=32, index=True)
    channel: str = Field(max_length=8)
    purpose: str = Field(max_length=32, index=True)
    to: str = Field(max_length=1000)
    cc: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    bcc: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    subject: str = Field(default="", max_length=300)
    body: str = Field(sa_column=Column(Text, nullable=False))
    attachments: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    # queued -> sending -> sent | failed; captured (outbox backend); unknown (see delivery)
    status: str = Field(default="queued", max_length=16, index=True)
    backend: str = Field(default="", max_length=16)
    provider_id: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=1000)
    attempts: int = Field(default=0)
    created_by: str = Field(default="", max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    sent_at: datetime | None = _ts(nullable=True)


class Document(SQLModel, table=True):
    """A stored file: a rendered PDF (quote, work receipt, invoice, result) or an uploaded logo.

    The id is random (128 bits) and is what workflows, messages and links carry; the bytes stay
    here (DESIGN.md §3). `idempotency_key` (workflow id, event sequence, kind) is unique, so a
    retried or replayed render finds the document the first attempt stored.
    """

    __tablename__ = "documents"

    id: str = Field(primary_key=True, max_length=32)
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    job_slug: str | None = Field(default=None, max_length=32, index=True)
    kind: str = Field(max_length=16)
    filename: str = Field(max_length=200)
    content_type: str = Field(max_length=100)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    sha256: str = Field(max_length=64)
    created_at: datetime = _ts(nullable=False, default=utcnow)


class PortalLink(SQLModel, table=True):
    """A job's closeout portal link (DESIGN.md §6 "Closeout").

    The token itself is never stored: it is derived from the server's secret key and `nonce`
    (core/portal.py), and only its SHA-256 is kept to find the link by. A copy of this table
    alone opens no portal.
    """

    __tablename__ = "portal_links"

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(max_length=32, unique=True)
    nonce: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    expires_at: datetime = _ts(nullable=False)


class QuoteLink(SQLModel, table=True):
    """A customer's link to one version of a job's quote (`/q/<token>`, issue 11), made the way
    the portal's is (core/portal.py): only the nonce and the token's SHA-256 are stored."""

    __tablename__ = "quote_links"
    __table_args__ = (UniqueConstraint("job_slug", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(max_length=32)
    version: int
    nonce: str = Field(max_length=64)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    expires_at: datetime = _ts(nullable=False)


class PortalSnapshot(SQLModel, table=True):
    """One version of what the customer's closeout portal shows for a job.

    Written by the portal-sync activity on `job_completed`; the portal shows the latest version
    and the webhook sends each one. `source_key` (workflow id, event sequence) is unique, so a
    retried sync finds the version it wrote.
    """

    __tablename__ = "portal_snapshots"
    __table_args__ = (UniqueConstraint("job_slug", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(max_length=32, index=True)
    version: int
    source_key: str = Field(max_length=200, unique=True)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(nullable=False, default=utcnow)
    # The external portal's webhook, when one is configured: pending -> sent | failed.
    webhook_status: str | None = Field(default=None, max_length=16)
    webhook_attempts: int = Field(default=0)
    webhook_error: str | None = Field(default=None, max_length=1000)
    webhook_sent_at: datetime | None = _ts(nullable=True)


class IdempotentRequest(SQLModel, table=True):
    """The answer to a keyed request made outside a workflow (api/idempotency.py)."""

    __tablename__ = "idempotent_requests"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=64, unique=True)  # sha256 of the user and their key
    digest: str = Field(max_length=64)
    status_code: int
    body: Any = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts(nullable=False, default=utcnow)


class JobResult(SQLModel, table=True):
    """One revision of a job's result (Sale / No Sale). Every submission adds a row; the job's
    current result is its highest revision. Written by the resulting workflow's activity;
    (job_slug, revision) is unique, so a retried write finds its row."""

    __tablename__ = "job_results"
    __table_args__ = (
        UniqueConstraint("job_slug", "revision"),
        # The reports' revisions submitted in a period (migration 0015).
        Index("ix_job_results_submitted_at", "submitted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_slug: str = Field(foreign_key="jobs.slug", index=True, max_length=32)
    revision: int
    type: str = Field(max_length=16, index=True)
    fields: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The type's fields (key, label, type, options) and pattern when this revision was submitted.
    form: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    pattern: str = Field(default="standard", max_length=32)
    amount: Decimal | None = Field(default=None, sa_column=Column(Numeric(14, 2)))
    submitted_by: str = Field(max_length=64, index=True)
    submitted_at: datetime = _ts(nullable=False)
    document_id: str | None = Field(default=None, max_length=32)


class PricebookItem(SQLModel, table=True):
    """An item of the price book (issue 11): its list price and what quotes say about it.
    Reference data the API owns (api/pricebook/service.py is its one writer)."""

    __tablename__ = "pricebook_items"
    # Search by name (the SKU is the primary key, so it has its own index).
    __table_args__ = (Index("ix_pricebook_items_name", "name"),)

    sku: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
    taxable: bool = Field(default=True)
    category: str = Field(default="", max_length=100, index=True)
    active: bool = Field(default=True)
    created_at: datetime = _ts(nullable=False, default=utcnow)
    updated_at: datetime = _ts(nullable=False, default=utcnow)


class PricebookPrice(SQLModel, table=True):
    """A fixed price of an item for a client tier or for one client (exactly one of the two),
    instead of the list price; a quote cannot change it."""

    __tablename__ = "pricebook_prices"
    __table_args__ = (
        UniqueConstraint("sku", "tier"),
        UniqueConstraint("sku", "client_id"),
        CheckConstraint(
            "(tier IS NULL) <> (client_id IS NULL)", name="ck_pricebook_prices_tier_or_client"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(foreign_key="pricebook_items.sku", max_length=64)
    tier: str | None = Field(default=None, max_length=16)
    client_id: int | None = Field(default=None, foreign_key="clients.id", index=True)
    unit_price: Decimal = Field(sa_column=Column(Numeric(12, 2), nullable=False))
