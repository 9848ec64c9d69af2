"""The SQL of :mod:`bot.storage.context_store`, per database where the dialects differ."""

from __future__ import annotations

from sqlalchemy import text

# PostgreSQL: concatenate the stored array and the new turns, keep the last :size.
# ON CONFLICT DO UPDATE works on the latest committed row under its row lock.
_UPSERT_POSTGRES = """
    INSERT INTO user_context (chat_id, user_id, context, updated_at)
    {source}
    ON CONFLICT (chat_id, user_id) DO UPDATE SET
        context = (
            SELECT COALESCE(jsonb_agg(t.elem ORDER BY t.pos), '[]'::jsonb)
            FROM jsonb_array_elements(user_context.context || EXCLUDED.context)
                 WITH ORDINALITY AS t(elem, pos)
            WHERE t.pos > jsonb_array_length(user_context.context || EXCLUDED.context) - :size
        ),
        updated_at = now()
"""
APPEND_POSTGRES = text(
    _UPSERT_POSTGRES.format(source="VALUES (:chat_id, :user_id, CAST(:turns AS jsonb), now())")
)

# One statement: the query message is inserted unless it is there already, and
# only then (the rows of `asked`) the answer's messages and the conversation.
# A second delivery of the same message waits for the first one's row lock and
# then changes nothing.
EXCHANGE_POSTGRES = text(
    """
    WITH asked AS (
        INSERT INTO chain_message (chat_id, message_id, reply_to_message_id, role, text, sender_id)
        VALUES (:chat_id, :message_id, :reply_to, 'user', :query, :user_id)
        ON CONFLICT (chat_id, message_id) DO NOTHING
        RETURNING message_id
    ), answered AS (
        INSERT INTO chain_message (chat_id, message_id, reply_to_message_id, role, text, sender_id)
        SELECT :chat_id, a.message_id, asked.message_id, 'bot', a.text, :user_id
        FROM asked, jsonb_to_recordset(CAST(:answers AS jsonb)) AS a(message_id bigint, text text)
        ON CONFLICT (chat_id, message_id) DO NOTHING
    )
    """
    + _UPSERT_POSTGRES.format(source="SELECT :chat_id, :user_id, CAST(:turns AS jsonb), now() FROM asked")
    + " RETURNING user_id"
)

# SQLite: the same with json_each; new turns sort after the stored ones. The
# aggregate runs as a window over the ordered rows because only a window (or
# SQLite >= 3.44) guarantees the order in which an aggregate sees its rows.
APPEND_SQLITE = text(
    """
    INSERT INTO user_context (chat_id, user_id, context, updated_at)
    VALUES (:chat_id, :user_id, json(:turns), CURRENT_TIMESTAMP)
    ON CONFLICT (chat_id, user_id) DO UPDATE SET
        context = (
            SELECT json_group_array(json(kept.value)) OVER (
                ORDER BY kept.pos ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING
            )
            FROM (
                SELECT value, pos FROM (
                    SELECT value, key AS pos FROM json_each(user_context.context)
                    UNION ALL
                    SELECT value, key + 1000000000 AS pos FROM json_each(excluded.context)
                ) ORDER BY pos DESC LIMIT :size
            ) AS kept
            LIMIT 1
        ),
        updated_at = CURRENT_TIMESTAMP
    """
)
# SQLite has no data-modifying CTE: the exchange is these three in one transaction,
# the last two only when the first inserted a row.
INSERT_QUERY_SQLITE = text(
    """
    INSERT INTO chain_message (chat_id, message_id, reply_to_message_id, role, text, sender_id, created_at)
    VALUES (:chat_id, :message_id, :reply_to, 'user', :query, :user_id, CURRENT_TIMESTAMP)
    ON CONFLICT (chat_id, message_id) DO NOTHING
    """
)
INSERT_ANSWERS_SQLITE = text(
    """
    INSERT INTO chain_message (chat_id, message_id, reply_to_message_id, role, text, sender_id, created_at)
    SELECT :chat_id, json_extract(a.value, '$.message_id'), :message_id, 'bot',
           json_extract(a.value, '$.text'), :user_id, CURRENT_TIMESTAMP
    FROM json_each(:answers) AS a
    WHERE true
    ON CONFLICT (chat_id, message_id) DO NOTHING
    """
)

# The exchange's transaction (PostgreSQL). Nobody is told of its commit (the answer is
# out already), so it need not wait for its WAL flush (~5 ms on a plain disk, more than
# the rest of a message's handling). A PostgreSQL crash may lose the last fraction of a
# second of exchanges, never corrupt one; the inbox's done mark that follows commits
# synchronously and flushes the WAL up to itself, so a message marked done keeps its
# exchange. LOCAL: everything else (the inbox, /forget, /clear_context) is acknowledged
# outward and keeps PostgreSQL's synchronous commit.
ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")

SELECT_CONTEXT = text("SELECT context FROM user_context WHERE chat_id = :chat_id AND user_id = :user_id")
CLEAR = text("DELETE FROM user_context WHERE chat_id = :chat_id AND user_id = :user_id")
CLEAR_CHAIN = text("DELETE FROM chain_message WHERE chat_id = :chat_id AND sender_id = :user_id")

# The conversation's newest queries the bot answered (or tried to: ``answered`` is false
# after the fallback line), newest first; ``:before`` (a message id, or NULL) bounds them.
SELECT_LATEST_QUERIES = text(
    """
    SELECT q.message_id, q.text, EXISTS (
        SELECT 1 FROM chain_message AS a
        WHERE a.chat_id = q.chat_id AND a.reply_to_message_id = q.message_id AND a.role = 'bot'
    ) AS answered
    FROM chain_message AS q
    WHERE q.chat_id = :chat_id AND q.sender_id = :user_id AND q.role = 'user'
      AND (CAST(:before AS BIGINT) IS NULL OR q.message_id < :before)
    ORDER BY q.message_id DESC LIMIT :limit
    """
)

# A reply chain, newest first, following reply_to_message_id through the stored messages.
SELECT_CHAIN = text(
    """
    WITH RECURSIVE chain(message_id, reply_to_message_id, role, text, sender_id, depth) AS (
        SELECT message_id, reply_to_message_id, role, text, sender_id, 1
        FROM chain_message WHERE chat_id = :chat_id AND message_id = :message_id
        UNION ALL
        SELECT m.message_id, m.reply_to_message_id, m.role, m.text, m.sender_id, chain.depth + 1
        FROM chain JOIN chain_message AS m
          ON m.chat_id = :chat_id AND m.message_id = chain.reply_to_message_id
        WHERE chain.depth < :limit
    )
    SELECT message_id, role, text, sender_id FROM chain ORDER BY depth
    """
)

# /forget: the sender's conversations in every chat, their messages and the answers to them.
FORGET_CONTEXT = text("DELETE FROM user_context WHERE user_id = :sender_id")
FORGET_CHAIN = text("DELETE FROM chain_message WHERE sender_id = :sender_id")

PURGE_POSTGRES = (
    text("DELETE FROM user_context WHERE updated_at < now() - make_interval(days => :days)"),
    text("DELETE FROM chain_message WHERE created_at < now() - make_interval(days => :days)"),
)
# CURRENT_TIMESTAMP and datetime() share SQLite's 'YYYY-MM-DD HH:MM:SS' (UTC) text form.
PURGE_SQLITE = (
    text("DELETE FROM user_context WHERE updated_at < datetime('now', '-' || :days || ' days')"),
    text("DELETE FROM chain_message WHERE created_at < datetime('now', '-' || :days || ' days')"),
)

# An edited query (bot/storage/context_edit.py): the conversation row is locked while
# its new list is computed; then the query's text and its answer's messages are replaced.
SELECT_CONTEXT_FOR_UPDATE = text(
    "SELECT context FROM user_context WHERE chat_id = :chat_id AND user_id = :user_id FOR UPDATE"
)
REPLACE_CONTEXT = {
    "postgresql": text(
        "INSERT INTO user_context (chat_id, user_id, context, updated_at) "
        "VALUES (:chat_id, :user_id, CAST(:turns AS jsonb), now()) ON CONFLICT (chat_id, user_id) "
        "DO UPDATE SET context = EXCLUDED.context, updated_at = now()"
    ),
    "sqlite": text(
        "INSERT INTO user_context (chat_id, user_id, context, updated_at) "
        "VALUES (:chat_id, :user_id, json(:turns), CURRENT_TIMESTAMP) ON CONFLICT (chat_id, user_id) "
        "DO UPDATE SET context = excluded.context, updated_at = CURRENT_TIMESTAMP"
    ),
}
UPDATE_QUERY = text(
    "UPDATE chain_message SET text = :query WHERE chat_id = :chat_id AND message_id = :message_id"
)
DELETE_ANSWERS = text(
    "DELETE FROM chain_message "
    "WHERE chat_id = :chat_id AND reply_to_message_id = :message_id AND role = 'bot'"
)
INSERT_ANSWERS = {
    "postgresql": text(
        "INSERT INTO chain_message (chat_id, message_id, reply_to_message_id, role, text, sender_id) "
        "SELECT :chat_id, a.message_id, :message_id, 'bot', a.text, :user_id "
        "FROM jsonb_to_recordset(CAST(:answers AS jsonb)) AS a(message_id bigint, text text) "
        "ON CONFLICT (chat_id, message_id) DO NOTHING"
    ),
    "sqlite": INSERT_ANSWERS_SQLITE,
}
