"""CONTEXT_RETENTION_DAYS: a periodic purge of conversations and chain messages older than that."""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from bot.storage.context_store import ContextStore, ContextStoreUnavailable

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


class RetentionPurge:
    """From the dispatcher's (or the terminal chat's) start to its end; ``days == 0`` keeps everything."""

    def __init__(self, store: ContextStore, days: int, every_s: float = PURGE_EVERY_S) -> None:
        self.store = store
        self.days = days
        self.every_s = every_s
        self._task: asyncio.Task[None] | None = None

    async def start(self, first_after_s: float = 0.0) -> None:
        if self.days > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(first_after_s), name="retention-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def purge(self) -> None:
        """One purge now; a database away only skips it."""
        if self.days <= 0:
            return
        try:
            deleted = await self.store.purge_older_than(self.days)
            log.info("retention purge: %d rows older than %d days deleted", deleted, self.days)
        except ContextStoreUnavailable:
            log.warning("retention purge skipped: database unavailable")

    async def _run(self, first_after_s: float) -> None:
        await asyncio.sleep(first_after_s)
        while True:
            await self.purge()
            await asyncio.sleep(self.every_s)
