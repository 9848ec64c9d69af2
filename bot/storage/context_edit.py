"""The latest exchange replaced, when its query message was edited (docs/groups.md, edits).

Only the conversation's newest stored query can be edited into a new exchange:
an older one has answers and messages after it, and rewriting it would leave
them answering something nobody said. The stored list loses the old exchange
(the answer, if there was one, then the query) and gets the new one; the
query's chain message takes the new text and the answer's messages are the
new answer's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import context_sql as sql
from dialogue.format import Turn


def stored_turns(stored: Any) -> list[Turn]:
    """The ``context`` column as turns: JSONB decoded by the driver, or SQLite's JSON text."""
    if stored is None:
        return []
    if isinstance(stored, str):
        stored = json.loads(stored)
    return [Turn(role=item["role"], text=item["text"]) for item in stored]


def turns_json(kept: Sequence[Turn], query: str, answer: str | None, size: int) -> str:
    """``kept`` and the new exchange (no bot turn for the fallback line), the last ``size``, as JSON."""
    turns = [*kept, Turn("user", query), *([Turn("bot", answer)] if answer is not None else [])]
    return json.dumps([{"role": t.role, "text": t.text} for t in turns[-size:]], ensure_ascii=False)


def without_exchange(turns: Sequence[Turn], query: str, answered: bool) -> list[Turn]:
    """``turns`` less their last exchange: its answer (when one was stored), then ``query``."""
    kept = list(turns)
    if answered and kept and kept[-1].role == "bot":
        kept.pop()
    if kept and kept[-1] == Turn("user", query):
        kept.pop()
    return kept


async def replace_latest(connection: AsyncConnection, params: dict[str, Any], size: int) -> bool:
    """In the caller's transaction; False when ``params["message_id"]`` is not the latest query.

    ``params``: chat_id, user_id, message_id, query, answer (None: the fallback
    line) and answers (the new answer's messages as JSON).
    """
    postgres = connection.dialect.name == "postgresql"
    # PostgreSQL's row lock: a concurrent exchange of this conversation waits for this one.
    select = sql.SELECT_CONTEXT_FOR_UPDATE if postgres else sql.SELECT_CONTEXT
    scope = {"chat_id": params["chat_id"], "user_id": params["user_id"]}
    stored = (await connection.execute(select, scope)).scalar_one_or_none()
    latest = (
        await connection.execute(sql.SELECT_LATEST_QUERIES, {**scope, "limit": 1, "before": None})
    ).first()
    if latest is None or latest.message_id != params["message_id"]:
        return False
    kept = without_exchange(stored_turns(stored), latest.text, bool(latest.answered))
    turns = turns_json(kept, params["query"], params["answer"], size)
    dialect = "postgresql" if postgres else "sqlite"
    await connection.execute(sql.REPLACE_CONTEXT[dialect], {**scope, "turns": turns})
    await connection.execute(sql.UPDATE_QUERY, params)
    await connection.execute(sql.DELETE_ANSWERS, params)
    await connection.execute(sql.INSERT_ANSWERS[dialect], params)
    return True
