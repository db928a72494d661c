"""the board's columns on jobs: worth and attention flags, from the state; the board's indexes

The board counted and summed values inside every open job's `state` (JSON); these columns hold
them (models/board.py, written by core/projection_store.job_row). The rows already there are
filled here from their states by the same functions, so an upgraded database is right at once
(the indexes are built after the fill, once).

Indexes: the board's columns (milestone, stuck, updated_at: a column's first cards in order);
its tally, covering (count, money and attention per stage without reading the rows); and
updated_at, the order of every job list.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
FLAGS = ("quote_stale", "parts_overdue", "unpaid")
# The board's tally reads these alone (SQLite: from the index, not the rows with their states).
TALLY_INDEX = ("stage", "stuck", *FLAGS, "owner", "amount")

_jobs = sa.table(
    "jobs",
    sa.column("slug", sa.String()),
    sa.column("state", sa.JSON()),
    sa.column("amount", sa.Numeric(14, 2)),
    *(sa.column(flag, sa.Boolean()) for flag in FLAGS),
)


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("amount", sa.Numeric(precision=14, scale=2), nullable=True))
        for flag in FLAGS:
            batch_op.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
    _backfill(op.get_bind())
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_jobs_board_column", ["milestone", "stuck", "updated_at"], unique=False
        )
        batch_op.create_index("ix_jobs_board_tally", [*TALLY_INDEX], unique=False)
        batch_op.create_index("ix_jobs_updated_at", ["updated_at"], unique=False)


def _backfill(connection: sa.Connection) -> None:
    """Every job's board columns from its state, in batches of BATCH rows (by slug)."""
    from models import board
    from models.lifecycle import JobState

    update = (
        sa.update(_jobs)
        .where(_jobs.c.slug == sa.bindparam("b_slug"))
        .values(
            amount=sa.bindparam("b_amount"),
            **{flag: sa.bindparam(f"b_{flag}") for flag in FLAGS},
        )
    )
    after = ""
    while True:
        rows = connection.execute(
            sa.select(_jobs.c.slug, _jobs.c.state)
            .where(_jobs.c.slug > after)
            .order_by(_jobs.c.slug)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        values: list[dict[str, Any]] = []
        for slug, state in rows:
            try:
                columns = board.columns(JobState.model_validate(state))
            except ValueError as bad:  # pydantic's ValidationError is one
                raise RuntimeError(f"job {slug!r}: its state does not read back: {bad}") from bad
            values.append({"b_slug": slug, **{f"b_{k}": v for k, v in columns.items()}})
        connection.execute(update, values)
        after = rows[-1].slug


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_updated_at")
        batch_op.drop_index("ix_jobs_board_tally")
        batch_op.drop_index("ix_jobs_board_column")
        for flag in reversed(FLAGS):
            batch_op.drop_column(flag)
        batch_op.drop_column("amount")
