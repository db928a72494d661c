"""closeout portal: links (hashed tokens) and versioned snapshots

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_slug", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_slug"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "portal_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_slug", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("webhook_status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer(), nullable=False),
        sa.Column("webhook_error", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("webhook_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("job_slug", "version"),
        sa.UniqueConstraint("source_key"),
    )
    with op.batch_alter_table("portal_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_portal_snapshots_job_slug"), ["job_slug"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("portal_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_portal_snapshots_job_slug"))
    op.drop_table("portal_snapshots")
    op.drop_table("portal_links")
