"""Long polling that acknowledges an update only after it is in the inbox.

aiogram's own polling moves the ``getUpdates`` offset as soon as it has read an
update, so what is in hand at a crash or deploy is lost. Here a batch goes into
the inbox first; only then does the next call's offset confirm it to Telegram.
"""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot
from aiogram.methods import GetUpdates
from aiogram.utils.backoff import Backoff, BackoffConfig

from bot.intake.notices import Apologies
from bot.intake.workers import Delivery
from bot.storage.inbox import InboxUnavailable

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30
BACKOFF = BackoffConfig(min_delay=1.0, max_delay=5.0, factor=1.3, jitter=0.1)


class RawGetUpdates(GetUpdates):
    """``getUpdates`` returning Telegram's JSON: the inbox stores it as it came.

    ``__returning__`` is the result type that aiogram's session validates the
    response against (every method declares one). Declaring plain JSON here
    skips parsing into ``Update`` objects that would only be dumped back to
    JSON for the inbox, and keeps fields this aiogram version does not know;
    the workers parse each update once, when they handle it.
    """

    __returning__ = list[dict[str, Any]]


async def poll(bot: Bot, delivery: Delivery, allowed_updates: list[str], apologies: Apologies) -> None:
    """Runs until cancelled; a cancelled batch was not confirmed, so Telegram sends it again."""
    backoff = Backoff(BACKOFF)
    offset: int | None = None
    request_timeout = int(bot.session.timeout + POLL_TIMEOUT_S)
    while True:
        method = RawGetUpdates(offset=offset, timeout=POLL_TIMEOUT_S, allowed_updates=allowed_updates)
        try:
            updates: list[dict[str, Any]] = await bot(method, request_timeout=request_timeout)  # type: ignore[arg-type]
        except Exception as exc:  # the Bot API may be away for a while; keep trying
            log.error("getUpdates failed (%s); retry in %.1f s", type(exc).__name__, backoff.next_delay)
            await backoff.asleep()
            continue
        backoff.reset()
        if not updates:
            continue
        await _store(delivery, updates, apologies)
        offset = int(updates[-1]["update_id"]) + 1


async def _store(delivery: Delivery, updates: list[dict[str, Any]], apologies: Apologies) -> None:
    """Retry until the batch is stored; the senders hear once that the bot has trouble."""
    backoff = Backoff(BACKOFF)
    while True:
        try:
            await delivery.accept(updates)
            return
        except InboxUnavailable as exc:
            log.warning("%d updates not stored yet: inbox unavailable (%s)", len(updates), exc)
            await apologies.database_unavailable(updates)
            await backoff.asleep()
