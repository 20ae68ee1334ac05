"""funnel_days (per-day funnel counts) and tickets.opened_at (first verify of a link)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "funnel_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("locale", sa.String(length=16), nullable=False),
        sa.Column("step", sa.String(length=16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "purpose", "locale", "step"),
    )
    op.add_column("tickets", sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("tickets", "opened_at")
    op.drop_table("funnel_days")
