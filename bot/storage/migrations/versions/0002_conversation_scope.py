"""Conversations per (chat, sender), and the messages of the reply chains the bot took part in.

``user_context`` gets ``chat_id`` and the primary key ``(chat_id, user_id)``;
existing rows were private conversations, so they move to chat_id = user_id.
``chain_message`` keeps the messages the bot answered and its own answers,
keyed by ``(chat_id, message_id)`` with the id of the message they reply to,
so that a reply's context can be rebuilt from its reply chain.

Downgrade keeps the private conversations (chat_id = user_id); group
conversations and the chain messages have no place in the old schema and go.

Revision ID: 0002_conversation_scope
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_conversation_scope"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _user_context(name: str, *key: str) -> None:
    """The table in either shape; ``key`` names the primary-key columns."""
    columns = [sa.Column("chat_id", sa.BigInteger(), autoincrement=False)] if "chat_id" in key else []
    op.create_table(
        name,
        *columns,
        sa.Column("user_id", sa.BigInteger(), autoincrement=False),
        sa.Column("context", _JSON, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint(*key, name=f"{name}_pkey"),
    )


def _replace_user_context(*key: str, select: str) -> None:
    # A new table, filled and renamed: the same steps on PostgreSQL and SQLite,
    # and no dependence on what the old primary key constraint was called.
    _user_context("user_context_next", *key)
    columns = ", ".join([*key, "context", "updated_at"])
    op.execute(f"INSERT INTO user_context_next ({columns}) {select}")
    op.drop_table("user_context")
    op.rename_table("user_context_next", "user_context")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE user_context RENAME CONSTRAINT user_context_next_pkey TO user_context_pkey")


def upgrade() -> None:
    _replace_user_context(
        "chat_id", "user_id", select="SELECT user_id, user_id, context, updated_at FROM user_context"
    )
    # /forget deletes a sender's conversations in every chat.
    op.create_index("ix_user_context_user_id", "user_context", ["user_id"])
    op.create_table(
        "chain_message",
        sa.Column("chat_id", sa.BigInteger(), autoincrement=False),
        sa.Column("message_id", sa.BigInteger(), autoincrement=False),
        sa.Column("reply_to_message_id", sa.BigInteger(), nullable=True),
        # "user": a message the bot answered; "bot": one of its answers.
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        # The conversation's user: who wrote a "user" message, whom a "bot" message answered.
        sa.Column("sender_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("chat_id", "message_id", name="chain_message_pkey"),
        sa.CheckConstraint("role IN ('user', 'bot')", name="chain_message_role"),
    )
    op.create_index("ix_chain_message_sender_id", "chain_message", ["sender_id"])
    op.create_index("ix_chain_message_created_at", "chain_message", ["created_at"])


def downgrade() -> None:
    op.drop_table("chain_message")
    op.drop_index("ix_user_context_user_id", "user_context")
    _replace_user_context(
        "user_id", select="SELECT user_id, context, updated_at FROM user_context WHERE chat_id = user_id"
    )
