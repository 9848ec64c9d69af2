"""Index telegram_inbox (chat_id, sender_id, sent_at): the flood window counts per chat and sender.

Revision ID: 0004_inbox_flood_index
Revises: 0003_inbox
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004_inbox_flood_index"
down_revision: str | None = "0003_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The count in bot/storage/inbox.py (_NEXT_COLUMNS) is an equality on chat and
    # sender and a range on sent_at. telegram_inbox_sender (sender_id, sent_at) stays:
    # /forget deletes a sender's rows in every chat by it.
    op.create_index("telegram_inbox_flood", "telegram_inbox", ["chat_id", "sender_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("telegram_inbox_flood", table_name="telegram_inbox")
