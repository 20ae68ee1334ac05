"""retention and the visible at-least-once: mail finished_at and resends; the
indexes that make deleting finished rows cheap

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_messages") as batch:
        batch.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("resends", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    # Mails that finished before this revision: their best known end is when they
    # were sent, else when they were queued (retention then starts from there).
    op.execute(
        "UPDATE mail_messages SET finished_at = COALESCE(sent_at, created_at)"
        " WHERE status IN ('sent', 'dead', 'expired')"
    )
    op.create_index("ix_mail_messages_finished_at", "mail_messages", ["finished_at"])
    op.create_index("ix_tickets_expires_at", "tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_expires_at", table_name="tickets")
    op.drop_index("ix_mail_messages_finished_at", table_name="mail_messages")
    with op.batch_alter_table("mail_messages") as batch:
        batch.drop_column("resends")
        batch.drop_column("finished_at")
