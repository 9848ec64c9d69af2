"""Update middlewares: per-user flood control."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.core import texts
from bot.core.i18n import gettext as _

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FloodControlMiddleware(BaseMiddleware):
    """At most ``limit`` messages per sender per RATE_LIMIT_PERIOD_S (sliding window).

    The inbox counts the sender's messages in the window up to this one
    (``recent_messages``), so the limit holds across replicas and restarts.
    Over the limit a message is dropped; the first one over it gets a notice.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        recent = data.get("recent_messages")
        if not isinstance(event, Message) or recent is None or recent <= self.limit:
            return await handler(event, data)
        if recent == self.limit + 1:
            await event.answer(_(texts.TOO_MANY_MESSAGES))
        return None
