"""the reports' indexes (api/reports/service.py)

- `job_events (type, at, job_slug, seq)`: the events of one kind in a period — approvals for
  sales, cancellations for loss reasons, the decisions after a quote's follow-ups — read from the
  index alone where the payload is not needed.
- `jobs (result_type, resulted_at)`: the current results of a kind in a period.
- `outbox_messages (purpose, job_slug, created_at)`: each job's quote follow-ups, from the index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_events_type_at", "job_events", ["type", "at", "job_slug", "seq"])
    op.create_index("ix_jobs_result", "jobs", ["result_type", "resulted_at"])
    op.create_index(
        "ix_outbox_messages_purpose_job", "outbox_messages", ["purpose", "job_slug", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_messages_purpose_job", table_name="outbox_messages")
    op.drop_index("ix_jobs_result", table_name="jobs")
    op.drop_index("ix_job_events_type_at", table_name="job_events")
