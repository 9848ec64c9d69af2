"""The last messages of each user, in table ``user_context`` (see ARCHITECTURE.md, section Bot).

Every change is one SQL statement that computes the new list inside the
database, so concurrent messages of one user neither lose an exchange nor
leave a malformed list; there is no read-modify-write in Python.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bot.db import CONNECTION_ERRORS
from dialogue.format import Turn

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL: concatenate the stored array and the new turns, keep the last :size.
# ON CONFLICT DO UPDATE works on the latest committed row under its row lock.
_APPEND_POSTGRES = text(
    """
    INSERT INTO user_context (user_id, context, updated_at)
    VALUES (:user_id, CAST(:turns AS jsonb), now())
    ON CONFLICT (user_id) DO UPDATE SET
        context = (
            SELECT COALESCE(jsonb_agg(t.elem ORDER BY t.pos), '[]'::jsonb)
            FROM jsonb_array_elements(user_context.context || EXCLUDED.context)
                 WITH ORDINALITY AS t(elem, pos)
            WHERE t.pos > jsonb_array_length(user_context.context || EXCLUDED.context) - :size
        ),
        updated_at = now()
    """
)

# SQLite: the same with json_each; new turns sort after the stored ones. The
# aggregate runs as a window over the ordered rows because only a window (or
# SQLite >= 3.44) guarantees the order in which an aggregate sees its rows.
_APPEND_SQLITE = text(
    """
    INSERT INTO user_context (user_id, context, updated_at)
    VALUES (:user_id, json(:turns), CURRENT_TIMESTAMP)
    ON CONFLICT (user_id) DO UPDATE SET
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

_SELECT = text("SELECT context FROM user_context WHERE user_id = :user_id")
_CLEAR = text("DELETE FROM user_context WHERE user_id = :user_id")


class ContextStoreUnavailable(RuntimeError):
    """The database did not answer after a few retries."""


class ContextStore:
    def __init__(self, engine: AsyncEngine, context_size: int, attempts: int = 3) -> None:
        if context_size < 1:
            raise ValueError("context_size must be at least 1")
        # Every operation is a single statement, atomic on its own: autocommit
        # spares the BEGIN and COMMIT round trips. Shares the engine's pool.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.context_size = context_size
        self._attempts = attempts
        self._append = _APPEND_POSTGRES if engine.dialect.name == "postgresql" else _APPEND_SQLITE

    async def get(self, user_id: int) -> list[Turn]:
        """The stored messages of ``user_id``, oldest first; [] for a new user."""

        async def run() -> Any:
            async with self.engine.connect() as connection:
                return (await connection.execute(_SELECT, {"user_id": user_id})).scalar_one_or_none()

        stored = await self._retry(run)
        if stored is None:
            return []
        if isinstance(stored, str):  # SQLite returns the JSON text
            stored = json.loads(stored)
        return [Turn(role=item["role"], text=item["text"]) for item in stored]

    async def append_exchange(self, user_id: int, user_text: str, bot_text: str) -> None:
        """Append the user's message and the bot's answer, keeping the last ``context_size``."""
        turns = [{"role": "user", "text": user_text}, {"role": "bot", "text": bot_text}]
        params = {
            "user_id": user_id,
            "turns": json.dumps(turns[-self.context_size :], ensure_ascii=False),
            "size": self.context_size,
        }

        async def run() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(self._append, params)

        await self._retry(run)

    async def clear(self, user_id: int) -> None:
        """Forget the conversation of ``user_id`` (nothing happens for an unknown user)."""

        async def run() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(_CLEAR, {"user_id": user_id})

        await self._retry(run)

    async def _retry(self, operation: Callable[[], Awaitable[T]]) -> T:
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=0.2, max=2.0),
                retry=retry_if_exception_type(CONNECTION_ERRORS),
                reraise=True,
            ):
                with attempt:
                    return await operation()
        except CONNECTION_ERRORS as exc:
            log.warning("context store unavailable: %s", type(exc).__name__)
            raise ContextStoreUnavailable(str(type(exc).__name__)) from exc
        raise AssertionError("unreachable")
