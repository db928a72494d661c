"""job resulting: job_results (every revision), the job's current result on jobs, event stages

`job_results` keeps every revision of a job's result (Sale / No Sale). `jobs` gains the current
result's type, revision, amount and time, and the unresulted flag with its due time, all written
by the resulting workflow's activities. `job_events.stage` is the stage an event left the job in,
for the reports' time in stage and conversion; rows already there get it only for each job's
latest event (the job's stage now), since the stages between are not stored anywhere.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_results",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("job_slug", sa.String(length=32), sa.ForeignKey("jobs.slug"), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("form", sa.JSON(), nullable=False),
        sa.Column("pattern", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("submitted_by", sa.String(length=64), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_id", sa.String(length=32), nullable=True),
        sa.UniqueConstraint("job_slug", "revision"),
    )
    op.create_index("ix_job_results_job_slug", "job_results", ["job_slug"])
    op.create_index("ix_job_results_type", "job_results", ["type"])
    op.create_index("ix_job_results_submitted_by", "job_results", ["submitted_by"])
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_type", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("result_revision", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("result_amount", sa.Numeric(precision=14, scale=2), nullable=True)
        )
        batch_op.add_column(sa.Column("resulted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("resulting_due_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("unresulted", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE job_events SET stage = (SELECT jobs.stage FROM jobs WHERE jobs.slug = "
        "job_events.job_slug AND jobs.seq = job_events.seq) WHERE EXISTS (SELECT 1 FROM jobs "
        "WHERE jobs.slug = job_events.job_slug AND jobs.seq = job_events.seq)"
    )


def downgrade() -> None:
    with op.batch_alter_table("job_events", schema=None) as batch_op:
        batch_op.drop_column("stage")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for column in (
            "unresulted",
            "resulting_due_at",
            "resulted_at",
            "result_amount",
            "result_revision",
            "result_type",
        ):
            batch_op.drop_column(column)
    op.drop_index("ix_job_results_submitted_by", table_name="job_results")
    op.drop_index("ix_job_results_type", table_name="job_results")
    op.drop_index("ix_job_results_job_slug", table_name="job_results")
    op.drop_table("job_results")
