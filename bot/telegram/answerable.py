"""Would the routers answer this raw update? Asked where the update never reaches them.

While the database is away an update cannot be stored, so it is not fed to the
dispatcher; the apology for it (:mod:`bot.intake.notices`) should still go only
where an answer would have gone. The rules are the routers' own
(:func:`bot.telegram.filters.speaks`, :class:`bot.telegram.filters.Allowed`),
applied to the update parsed the way the dispatcher parses it. ``bot.__main__``
hands this to the intake, which may not import this package.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.types import Message
from pydantic import ValidationError

from bot.settings import Settings
from bot.telegram.filters import Allowed, speaks


class WouldAnswer:
    """``await would_answer(update)``: the update's message when the bot would answer it, else None."""

    def __init__(self, settings: Settings, bot: Bot) -> None:
        self.bot = bot
        self.mode = settings.group_reply_mode
        self.allowed = Allowed(settings.allowed_user_ids, settings.allowed_chat_ids)

    async def __call__(self, update: dict[str, Any]) -> Message | None:
        raw = update.get("message")
        if not isinstance(raw, dict):
            return None
        try:
            message = Message.model_validate(raw, context={"bot": self.bot})
        except ValidationError:
            return None
        if speaks(message, await self.bot.me(), self.mode) and await self.allowed(message):
            return message
        return None
