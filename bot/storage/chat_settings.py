"""A chat's own settings (table ``chat_settings``), set by its admins with /settings.

A column left NULL (or a chat without a row) takes the environment's default:
GROUP_REPLY_MODE, BOT_LANGUAGE, LEARNING_DEFAULT. The row is read for every
update, so a change applies to the next message on every replica: the inbox
reads it with the update (bot/storage/inbox.py), :meth:`ChatSettingsStore.get`
where an update comes another way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.db import with_retries

ReplyMode = Literal["mention", "all", "off"]
REPLY_MODES: tuple[ReplyMode, ...] = ("mention", "all", "off")
# "auto" is stored as NULL: each user's Telegram language_code (or BOT_LANGUAGE), as without a row.
CHAT_LANGUAGES = ("auto", "ru", "en")

_SELECT = text("SELECT reply_mode, language, learning FROM chat_settings WHERE chat_id = :chat_id")
# One statement per column, the column's name from this table only.
_UPSERT = {
    column: text(
        f"""
        INSERT INTO chat_settings (chat_id, {column}, updated_at) VALUES (:chat_id, :value, CURRENT_TIMESTAMP)
        ON CONFLICT (chat_id) DO UPDATE SET {column} = EXCLUDED.{column}, updated_at = CURRENT_TIMESTAMP
        """
    )
    for column in ("reply_mode", "language", "learning")
}


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """What applies in a chat now: its row, or the defaults where it has none."""

    reply_mode: ReplyMode
    language: str | None  # None: by the user's language_code (or BOT_LANGUAGE)
    learning: bool


class StoredSettings(NamedTuple):
    """A chat's row as stored: NULL (None) where its admins have not chosen, or without a row."""

    reply_mode: ReplyMode | None
    language: str | None
    learning: bool | int | None


NOT_STORED = StoredSettings(None, None, None)


class ChatSettingsStore:
    def __init__(self, engine: AsyncEngine, defaults: ChatSettings, attempts: int = 2) -> None:
        # Single statements: no BEGIN/COMMIT round trips.
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.defaults = defaults
        self._attempts = attempts

    async def get(self, chat_id: int) -> ChatSettings:
        async def run() -> ChatSettings:
            async with self.engine.connect() as connection:
                row = (await connection.execute(_SELECT, {"chat_id": chat_id})).first()
            return self.resolve(NOT_STORED if row is None else StoredSettings(*row))

        return await with_retries(run, self._attempts)

    def resolve(self, row: StoredSettings) -> ChatSettings:
        """What applies: the row's columns, the defaults where they are NULL."""
        return ChatSettings(
            reply_mode=row.reply_mode or self.defaults.reply_mode,
            language=row.language or self.defaults.language,
            learning=self.defaults.learning if row.learning is None else bool(row.learning),
        )

    async def set(
        self, chat_id: int, column: Literal["reply_mode", "language", "learning"], value: object
    ) -> None:
        async def run() -> None:
            async with self.engine.connect() as connection:
                await connection.execute(_UPSERT[column], {"chat_id": chat_id, "value": value})

        await with_retries(run, self._attempts)
