"""the reports' covering indexes: what they read of the wide jobs table, from an index

A job row carries its whole state as JSON (~1.9 KB a row: 185 MB for 100,000 jobs on
PostgreSQL), so a report that needs two narrow columns of many jobs read the whole table. At
100,000 jobs (bench/scale.py) that made follow-ups and resulting miss their p95 goal (530 and
835 ms). Each index here holds all a report query reads of `jobs`, so the table is not read:

- `jobs (slug, owner, result_revision, contract_amount)`: joining messages, results and events
  to their job for its owner (follow-ups, by month and owner), its current result revision
  (resulting, loss reasons) and its contract amount (sales: the approvals of each month);
- `jobs (result_type, resulted_at, owner, result_amount)` in place of `(result_type,
  resulted_at)`: the current results of a kind in a period, counted and summed (sales,
  resulting);
- `jobs (unresulted, resulting_due_at, slug)`: the jobs due a result, soonest due first
  (resulting's list stops at its limit instead of sorting every unresulted job).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 03:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_jobs_slug_owner", "jobs", ["slug", "owner", "result_revision", "contract_amount"]
    )
    op.drop_index("ix_jobs_result", table_name="jobs")
    op.create_index(
        "ix_jobs_result", "jobs", ["result_type", "resulted_at", "owner", "result_amount"]
    )
    op.create_index("ix_jobs_unresulted_due", "jobs", ["unresulted", "resulting_due_at", "slug"])


def downgrade() -> None:
    op.drop_index("ix_jobs_unresulted_due", table_name="jobs")
    op.drop_index("ix_jobs_result", table_name="jobs")
    op.create_index("ix_jobs_result", "jobs", ["result_type", "resulted_at"])
    op.drop_index("ix_jobs_slug_owner", table_name="jobs")
