"""pricebook_items and pricebook_prices: the price book (issue 11 item 1)

Items by SKU with their list price; fixed prices per client tier or per client (exactly one of
the two, checked by the database too).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pricebook_items",
        sa.Column("sku", sa.String(length=64), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.Column("taxable", sa.Boolean(), nullable=False),
        sa.Column("category", sa.String(length=100), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_pricebook_items_name", "pricebook_items", ["name"])
    op.create_index("ix_pricebook_items_category", "pricebook_items", ["category"])
    op.create_table(
        "pricebook_prices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "sku", sa.String(length=64), sa.ForeignKey("pricebook_items.sku"), nullable=False
        ),
        sa.Column("tier", sa.String(length=16), nullable=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=True),
        sa.Column("unit_price", sa.Numeric(12, 2), nullable=False),
        sa.UniqueConstraint("sku", "tier"),
        sa.UniqueConstraint("sku", "client_id"),
        sa.CheckConstraint(
            "(tier IS NULL) <> (client_id IS NULL)", name="ck_pricebook_prices_tier_or_client"
        ),
    )
    op.create_index("ix_pricebook_prices_client_id", "pricebook_prices", ["client_id"])


def downgrade() -> None:
    op.drop_index("ix_pricebook_prices_client_id", table_name="pricebook_prices")
    op.drop_table("pricebook_prices")
    op.drop_index("ix_pricebook_items_category", table_name="pricebook_items")
    op.drop_index("ix_pricebook_items_name", table_name="pricebook_items")
    op.drop_table("pricebook_items")
