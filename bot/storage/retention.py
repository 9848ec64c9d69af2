"""CONTEXT_RETENTION_DAYS and CORPUS_RETENTION_DAYS: a periodic purge of what is older than that.

Conversations and chain messages go after CONTEXT_RETENTION_DAYS without a
change; learning-corpus messages CORPUS_RETENTION_DAYS after they were sent.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta

from bot.storage.context_store import ContextStore, ContextStoreUnavailable
from bot.storage.corpus import Corpus

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0


class RetentionPurge:
    """From the dispatcher's (or the terminal chat's) start to its end; ``days == 0`` keeps everything."""

    def __init__(
        self,
        store: ContextStore,
        days: int,
        every_s: float = PURGE_EVERY_S,
        corpus: Corpus | None = None,
        corpus_days: int = 0,
    ) -> None:
        self.store = store
        self.days = days
        self.every_s = every_s
        self.corpus = corpus
        self.corpus_days = corpus_days if corpus is not None else 0
        self._task: asyncio.Task[None] | None = None

    async def start(self, first_after_s: float = 0.0) -> None:
        if (self.days > 0 or self.corpus_days > 0) and self._task is None:
            self._task = asyncio.create_task(self._run(first_after_s), name="retention-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def purge(self) -> None:
        """One purge now (conversations, and the corpus when given); a database away only skips it."""
        try:
            if self.days > 0:
                deleted = await self.store.purge_older_than(self.days)
                log.info("retention purge: %d rows older than %d days deleted", deleted, self.days)
            if self.corpus is not None and self.corpus_days > 0:
                cutoff = datetime.now(UTC) - timedelta(days=self.corpus_days)
                deleted = await self.corpus.purge_before(cutoff)
                log.info("corpus purge: %d messages older than %d days deleted", deleted, self.corpus_days)
        except ContextStoreUnavailable:
            log.warning("retention purge skipped: database unavailable")

    async def _run(self, first_after_s: float) -> None:
        await asyncio.sleep(first_after_s)
        while True:
            await self.purge()
            await asyncio.sleep(self.every_s)
