"""A Bot API session that keeps aiogram's ``Response[T]`` classes alive while the bot runs.

aiogram validates every Bot API answer against ``Response[method.__returning__]``,
a pydantic generic it parametrizes per call. pydantic caches parametrized
generics only weakly, and the garbage collector frees these (they sit in
reference cycles), so a freed one is built again, core schema and validator
and all: about 8% of the bot's CPU per message in py-spy profiles of
``benchmarks.bot_overhead`` before this. Holding one reference per result type
makes each of them a dictionary hit after the first call.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType


class KeepingSession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A handful of entries: one per result type of the methods the bot calls.
        self._kept: dict[Any, type[Response[Any]]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._kept:
            self._kept[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
