"""Flood control: at most RATE_LIMIT_MESSAGES per (chat, sender) per RATE_LIMIT_PERIOD_S.

An inner middleware of the routers that answer (:mod:`bot.telegram.handlers`):
aiogram runs it only once the filters chose a handler, so group chatter that
does not call the bot, and strangers outside ``ALLOWED_*``, never hear of it.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.storage.scope import sender_id
from bot.telegram.sending import reply

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
REMEMBERED = 10_000


class FloodControlMiddleware(BaseMiddleware):
    """Drops a message over the limit; tells the sender once per window, as a reply.

    The inbox counts the sender's messages in this chat in the window up to this
    one (``recent_messages``, a sliding window on Telegram's send times), so the
    limit holds across replicas and restarts. The count includes the sender's
    group messages the bot did not answer, so the first message over the limit
    may be one that never reaches this middleware: "once per window" is kept
    here instead, per process, on the same clock (a chat that moves to another
    replica within the window may hear it once more).
    """

    def __init__(self, limit: int, period_s: float) -> None:
        self.limit = limit
        self.period_s = period_s
        self._told_at: dict[tuple[int, int], float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        recent = data.get("recent_messages")
        if not isinstance(event, Message) or recent is None or recent <= self.limit:
            return await handler(event, data)
        key, sent_at = (event.chat.id, sender_id(event) or 0), event.date.timestamp()
        if sent_at - self._told_at.get(key, -math.inf) >= self.period_s:
            if len(self._told_at) >= REMEMBERED:  # bounded memory: forget windows long past
                self._told_at = {k: t for k, t in self._told_at.items() if sent_at - t < self.period_s}
            self._told_at[key] = sent_at
            await reply(event, _(texts.TOO_MANY_MESSAGES).format(seconds=math.ceil(self.period_s)))
        return None
