"""Retries of Bot API calls: 429 waits ``retry_after``; 5xx and network errors back off.

Calls made under :func:`best_effort` are tried once: an intermediate draft or
edit of a growing answer (bot/telegram/streaming.py) is replaced by the next
one, and waiting out its 429 would only hold up the final text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

log = logging.getLogger(__name__)

RETRIABLE = (TelegramRetryAfter, TelegramServerError, TelegramNetworkError)
# A context variable, not a field of the method: aiogram would send a field to Telegram.
_BEST_EFFORT: ContextVar[bool] = ContextVar("best_effort", default=False)


@contextmanager
def best_effort() -> Iterator[None]:
    """Bot API calls inside are not retried; their errors reach the caller at once."""
    token = _BEST_EFFORT.set(True)
    try:
        yield
    finally:
        _BEST_EFFORT.reset(token)


class RetryRequestMiddleware(BaseRequestMiddleware):
    def __init__(self, attempts: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 30.0) -> None:
        self.attempts = attempts
        self._backoff = wait_exponential(multiplier=backoff_s, max=max_backoff_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TelegramRetryAfter):
            return float(exc.retry_after)
        return float(self._backoff(state))

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        # Polling has its own backoff for getUpdates.
        if method.__api_method__ == GetUpdates.__api_method__ or _BEST_EFFORT.get():
            return await make_request(bot, method)
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(RETRIABLE),
            before_sleep=_log_retry,
            reraise=True,
        ):
            with attempt:
                return await make_request(bot, method)
        raise AssertionError("unreachable")


def _log_retry(state: RetryCallState) -> None:
    exc: Any = state.outcome.exception() if state.outcome else None
    method = getattr(getattr(exc, "method", None), "__api_method__", "?")
    log.warning(
        "Bot API %s failed (%s), retry %d in %.1f s",
        method,
        type(exc).__name__,
        state.attempt_number,
        state.next_action.sleep if state.next_action else 0.0,
    )
