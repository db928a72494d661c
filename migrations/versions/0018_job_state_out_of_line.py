"""a job's state out of line on PostgreSQL: the jobs table holds its narrow columns only

A job row carries its whole state as JSON, 2–4 KB as text. PostgreSQL compresses a row over
2 KB and keeps it in the table when it fits there (~1.9 KB a row: 185 MB for 100,000 jobs), so
every read of many jobs that has to visit the table read the state too: the count of a text
search matching thousands (the trigram index is lossy, each candidate is checked in its row;
`q=rooftop` at 100,000 jobs, 10,000 found: 40 ms of its 65), the board's and the reports' scans.

`toast_tuple_target = 128` (the least PostgreSQL takes) has PostgreSQL move the compressed state
to the table's TOAST relation whenever it toasts a row (a row over 2 KB as written), leaving ~0.4
KB in the table. Reading a job whole costs one lookup in the TOAST index more; the lists leave
the state unread (api/jobs/service.py). A row under 2 KB as written (a new lead's) stays whole.

The option applies to rows as they are written, so every job's state is written again here
(`state::text::json` is a new value, not the stored one, so PostgreSQL toasts it anew): 8.3 s
for 100,000 jobs on 2 cores, holding the table's rows locked meanwhile. SQLite keeps rows as
they come: nothing to do there.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 11:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The jobs columns but the state that PostgreSQL may move out of line (storage EXTENDED).
_OTHER_EXTENDED_COLUMNS = """
    SELECT attname FROM pg_attribute
    WHERE attrelid = 'jobs'::regclass AND attnum > 0 AND NOT attisdropped
      AND attstorage = 'x' AND attname <> 'state'
"""

# The columns upgrade() set to MAIN: their type's default storage is EXTENDED.
_KEPT_IN_THE_ROW = """
    SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
    WHERE a.attrelid = 'jobs'::regclass AND a.attnum > 0 AND NOT a.attisdropped
      AND a.attstorage = 'm' AND t.typstorage = 'x'
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # PostgreSQL moves a row's values out of line, biggest first, until the row fits the target:
    # after the state, every text column over 18 bytes (a title, a client's name) would follow,
    # and a search would read each row's title from TOAST. MAIN keeps a column in the row.
    bind = op.get_bind()
    for (column,) in bind.exec_driver_sql(_OTHER_EXTENDED_COLUMNS).all():
        op.execute(f'ALTER TABLE jobs ALTER COLUMN "{column}" SET STORAGE MAIN')
    op.execute("ALTER TABLE jobs SET (toast_tuple_target = 128)")
    op.execute("UPDATE jobs SET state = state::text::json")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE jobs RESET (toast_tuple_target)")
    for (column,) in op.get_bind().exec_driver_sql(_KEPT_IN_THE_ROW).all():
        op.execute(f'ALTER TABLE jobs ALTER COLUMN "{column}" SET STORAGE EXTENDED')
