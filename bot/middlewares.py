"""Update middlewares: per-user flood control."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot import texts

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class FloodControlMiddleware(BaseMiddleware):
    """At most ``limit`` messages per user per ``period_s`` (sliding window).

    Over the limit a message is dropped; the user is told once per window.
    """

    def __init__(self, limit: int, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.period_s = period_s
        self._clock = clock
        self._recent: defaultdict[int, deque[float]] = defaultdict(deque)
        self._warned_at: dict[int, float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.from_user is None:
            return await handler(event, data)
        user_id = event.from_user.id
        now = self._clock()
        recent = self._recent[user_id]
        while recent and now - recent[0] >= self.period_s:
            recent.popleft()
        if len(recent) >= self.limit:
            if now - self._warned_at.get(user_id, -self.period_s) >= self.period_s:
                self._warned_at[user_id] = now
                await event.answer(texts.TOO_MANY_MESSAGES)
            return None
        recent.append(now)
        if len(self._recent) > 10_000:
            self._forget_idle(now)
        return await handler(event, data)

    def _forget_idle(self, now: float) -> None:
        """Keep memory bounded when many users come and go."""
        idle = [u for u, times in self._recent.items() if not times or now - times[-1] >= self.period_s]
        for user_id in idle:
            del self._recent[user_id]
            self._warned_at.pop(user_id, None)
