"""Table telegram_inbox: every update, stored before it is acknowledged, processed from there.

Revision ID: 0003_inbox
Revises: 0002_conversation_scope
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_inbox"
down_revision: str | None = "0002_conversation_scope"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telegram_inbox",
        sa.Column("update_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        # The conversation's user: sender_chat.id for anonymous admins and channels, else from.id.
        sa.Column("sender_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        # Telegram's own send time (unix seconds): one clock for every replica's flood control.
        sa.Column("sent_at", sa.BigInteger(), nullable=False),
        # NULL once done: only the ids are needed to drop a re-sent update.
        sa.Column("payload", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        # NULL while the update waits or is in progress; set once answered and stored.
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
    )
    # Telegram re-sends an update under a new update_id only in odd cases; the message is the same.
    op.create_index("telegram_inbox_message", "telegram_inbox", ["chat_id", "message_id"], unique=True)
    # The work queue: what is not done yet, per chat in arrival order.
    op.create_index(
        "telegram_inbox_pending",
        "telegram_inbox",
        ["chat_id", "update_id"],
        postgresql_where=sa.text("done_at IS NULL"),
        sqlite_where=sa.text("done_at IS NULL"),
    )
    op.create_index("telegram_inbox_sender", "telegram_inbox", ["sender_id", "sent_at"])


def downgrade() -> None:
    op.drop_table("telegram_inbox")
