"""Tables chat_settings (a chat's own manners, set by its admins) and corpus_message / corpus_optout
(the opt-in learning corpus, anonymised before it is written).

Revision ID: 0005_chat_settings_and_corpus
Revises: 0004_inbox_flood_index
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_chat_settings_and_corpus"
down_revision: str | None = "0004_inbox_flood_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # NULL in a column: the environment's default (GROUP_REPLY_MODE, BOT_LANGUAGE, LEARNING_DEFAULT).
    op.create_table(
        "chat_settings",
        sa.Column("chat_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("reply_mode", sa.Text(), nullable=True),  # mention | all | off
        sa.Column("language", sa.Text(), nullable=True),  # auto | ru | en
        sa.Column("learning", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    # One row per group message kept for training. No user id: author_key is a keyed hash
    # (HMAC-SHA256 of the sender id with CORPUS_SECRET, hex), so a person's rows can be deleted.
    op.create_table(
        "corpus_message",
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("reply_to_message_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author_key", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("chat_id", "message_id"),
    )
    op.create_index("corpus_message_author", "corpus_message", ["author_key"])
    op.create_index("corpus_message_sent_at", "corpus_message", ["sent_at"])
    # /optout: nothing of this author is collected, anywhere, until /optin.
    op.create_table(
        "corpus_optout",
        sa.Column("author_key", sa.Text(), primary_key=True),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("corpus_optout")
    op.drop_index("corpus_message_sent_at", table_name="corpus_message")
    op.drop_index("corpus_message_author", table_name="corpus_message")
    op.drop_table("corpus_message")
    op.drop_table("chat_settings")
