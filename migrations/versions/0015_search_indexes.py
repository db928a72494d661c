"""search and list indexes: trigram text search on PostgreSQL, and the lists' missing btrees

Text search (`lower(column) LIKE '%text%'`, the wildcards in the text escaped) reads a GIN
trigram index on PostgreSQL: `pg_trgm` (a trusted extension, so the database's owner may create
it) indexes the very expression each service searches, so the planner matches them:

- jobs: `lower(title)`, `lower(client_name)` (api/jobs/service.py; the slug and the number are
  compared whole, by their own indexes);
- clients: `lower(name)`, `lower(coalesce(email, ''))`, `coalesce(phone, '')`
  (api/clients/service.py);
- outbox_messages: `lower("to")`, `lower(subject)`, `lower(body)` (api/outbox/service.py);
- pricebook_items: `lower(sku)`, `lower(name)` (api/pricebook/service.py).

SQLite has no trigram index (its LIKE reads the table): nothing of that here.

The btrees, on both databases (models/tables.py declares them):

- the job list's filters that had none, each with the list's order (`updated_at`) after it:
  owner, assigned technician (also a technician's own jobs), waiting on, and the board's
  attention flags (stale quote, overdue parts, unpaid, unresulted);
- the reports': jobs created in a period, jobs resulted more than once, result revisions
  submitted in a period, and the stage visits that ended by stage and bucket (time in stage
  counts them from the index alone);
- clients by tier in name order; the outbox newest first, and by channel;
- the board's tally index again, with `unresulted` (0009 made it before that column came), so
  the tally reads the index alone.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, the indexed expression exactly as the service's query says it)
TRIGRAM_INDEXES = {
    "ix_jobs_title_trgm": ("jobs", "lower(title)"),
    "ix_jobs_client_name_trgm": ("jobs", "lower(client_name)"),
    "ix_clients_name_trgm": ("clients", "lower(name)"),
    "ix_clients_email_trgm": ("clients", "lower(coalesce(email, ''))"),
    "ix_clients_phone_trgm": ("clients", "coalesce(phone, '')"),
    "ix_outbox_messages_to_trgm": ("outbox_messages", 'lower("to")'),
    "ix_outbox_messages_subject_trgm": ("outbox_messages", "lower(subject)"),
    "ix_outbox_messages_body_trgm": ("outbox_messages", "lower(body)"),
    "ix_pricebook_items_sku_trgm": ("pricebook_items", "lower(sku)"),
    "ix_pricebook_items_name_trgm": ("pricebook_items", "lower(name)"),
}

# name: (table, columns)
BTREE_INDEXES = {
    "ix_jobs_owner": ("jobs", ["owner", "updated_at"]),
    "ix_jobs_assigned_tech": ("jobs", ["assigned_tech", "updated_at"]),
    "ix_jobs_waiting_on": ("jobs", ["waiting_on", "updated_at"]),
    "ix_jobs_quote_stale": ("jobs", ["quote_stale", "updated_at"]),
    "ix_jobs_parts_overdue": ("jobs", ["parts_overdue", "updated_at"]),
    "ix_jobs_unpaid": ("jobs", ["unpaid", "updated_at"]),
    "ix_jobs_unresulted": ("jobs", ["unresulted", "updated_at"]),
    "ix_jobs_created_at": ("jobs", ["created_at"]),
    "ix_jobs_result_revision": ("jobs", ["result_revision"]),
    "ix_job_results_submitted_at": ("job_results", ["submitted_at"]),
    "ix_clients_tier": ("clients", ["tier", "name"]),
    "ix_outbox_messages_created": ("outbox_messages", ["created_at", "id"]),
    "ix_outbox_messages_channel": ("outbox_messages", ["channel", "created_at"]),
}


TALLY = ["stage", "stuck", "quote_stale", "parts_overdue", "unpaid", "owner", "amount"]


def upgrade() -> None:
    for name, (table, columns) in BTREE_INDEXES.items():
        op.create_index(name, table, columns)
    op.create_index(
        "ix_job_stage_visits_ended",
        "job_stage_visits",
        ["stage", "bucket"],
        postgresql_where=sa.text("left_at IS NOT NULL"),
        sqlite_where=sa.text("left_at IS NOT NULL"),
    )
    op.drop_index("ix_jobs_board_tally", table_name="jobs")
    op.create_index("ix_jobs_board_tally", "jobs", [*TALLY, "unresulted"])
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, (table, expression) in TRIGRAM_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression}) gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # The extension stays: something else in the database may use it.
    op.drop_index("ix_jobs_board_tally", table_name="jobs")
    op.create_index("ix_jobs_board_tally", "jobs", TALLY)
    op.drop_index("ix_job_stage_visits_ended", table_name="job_stage_visits")
    for name, (table, _) in BTREE_INDEXES.items():
        op.drop_index(name, table_name=table)
