"""tickets: the mail's one-time code (state, attempts) and the ticket minted at redeem

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("code_state", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("code_attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("redeem_hash", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_tickets_redeem_hash", ["redeem_hash"])
    op.create_index("ix_tickets_email", "tickets", ["email"])


def downgrade() -> None:
    op.drop_index("ix_tickets_email", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("uq_tickets_redeem_hash", type_="unique")
        batch.drop_column("redeem_hash")
        batch.drop_column("code_attempts")
        batch.drop_column("code_state")
