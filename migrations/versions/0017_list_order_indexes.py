"""the lists' indexes end with the slug, their tie-breaker (api/jobs/service.py LIST_ORDER)

The lists (the JSON API's, the board's list view and its columns) show the most recently
changed jobs first, the slug breaking ties. Their indexes held the time only, so PostgreSQL
read a page in the time's order and sorted each run of equal times by slug: with thousands of
jobs changed at the same instant (an import, a bulk update; bench/scale.py's bulk seed), the
first page read and sorted all of them (1,736 whole rows, 80–340 ms, for 50). Each index now
ends with the slug, and the lists order by it the same way as the time, so the index read
backwards is the order itself.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 04:05:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: the columns before the slug
INDEXES = {
    "ix_jobs_updated_at": ["updated_at"],
    "ix_jobs_board_column": ["milestone", "stuck", "updated_at"],
    "ix_jobs_owner": ["owner", "updated_at"],
    "ix_jobs_assigned_tech": ["assigned_tech", "updated_at"],
    "ix_jobs_waiting_on": ["waiting_on", "updated_at"],
    "ix_jobs_quote_stale": ["quote_stale", "updated_at"],
    "ix_jobs_parts_overdue": ["parts_overdue", "updated_at"],
    "ix_jobs_unpaid": ["unpaid", "updated_at"],
    "ix_jobs_unresulted": ["unresulted", "updated_at"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name="jobs")
        op.create_index(name, "jobs", [*columns, "slug"])


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, table_name="jobs")
        op.create_index(name, "jobs", columns)
