"""job_stage_visits: each job's visits to its stages, for the reports' time in stage

Written by the projection from now on (core/stage_visits.py); the visits of the timelines already
stored are made here from their events' stages (job_events.stage, migration 0010: for events
recorded before it only each job's latest has one, so older jobs' visits begin there).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    from core.stage_visits import backfill

    op.create_table(
        "job_stage_visits",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_slug", sa.String(length=32), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("bucket", sa.Integer(), nullable=True),
        sa.UniqueConstraint("job_slug", "entered_at", "stage"),
    )
    backfill(op.get_bind())
    op.create_index("ix_job_stage_visits_job_slug", "job_stage_visits", ["job_slug"])
    op.create_index("ix_job_stage_visits_entered", "job_stage_visits", ["entered_at", "stage"])
    op.create_index(
        "ix_job_stage_visits_lengths", "job_stage_visits", ["stage", "bucket", "seconds"]
    )
    op.create_index(
        "ix_job_stage_visits_open",
        "job_stage_visits",
        ["stage", "entered_at"],
        postgresql_where=sa.text("left_at IS NULL"),
        sqlite_where=sa.text("left_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_job_stage_visits_open", table_name="job_stage_visits")
    op.drop_index("ix_job_stage_visits_lengths", table_name="job_stage_visits")
    op.drop_index("ix_job_stage_visits_entered", table_name="job_stage_visits")
    op.drop_index("ix_job_stage_visits_job_slug", table_name="job_stage_visits")
    op.drop_table("job_stage_visits")
