"""ALLOWED_USER_IDS / ALLOWED_CHAT_IDS: anyone else gets one polite line an hour, nothing more.

A refused message reaches neither the model nor the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiogram import Router
from aiogram.types import Message

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.settings import Settings
from bot.storage.scope import sender_id
from bot.telegram.filters import Allowed
from bot.telegram.sending import reply

NOTICE_EVERY_S = 3600.0


class NotAllowedNotice:
    """Tells a refused user at most once per ``every_s`` (per process)."""

    def __init__(self, every_s: float = NOTICE_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._told_at: dict[int, float] = {}

    async def tell(self, message: Message) -> None:
        now, user = self._clock(), sender_id(message) or 0
        if now - self._told_at.get(user, -self.every_s) < self.every_s:
            return
        if len(self._told_at) > 10_000:  # bounded memory when many strangers come and go
            self._told_at = {u: t for u, t in self._told_at.items() if now - t < self.every_s}
        self._told_at[user] = now
        await reply(message, _(texts.NOT_ALLOWED))


def build_router(settings: Settings) -> Router:
    router = Router(name="access")
    if settings.allowed_user_ids or settings.allowed_chat_ids:
        allowed = Allowed(settings.allowed_user_ids, settings.allowed_chat_ids)
        router.message.register(NotAllowedNotice().tell, ~allowed)
    return router
