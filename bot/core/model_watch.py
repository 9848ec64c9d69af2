"""Following the model server's hot swaps: a new ``model_revision`` is logged, its context size adopted.

The server swaps models without a restart (``MODEL_WATCH_S``, ``POST /admin/reload``);
a retrained model may read a different number of messages. Every MODEL_WATCH_S the
bot reads /health; the store's context size follows the model unless CONTEXT_SIZE is set.
"""

from __future__ import annotations

import asyncio
import logging

from bot.core.model_client import ModelClient, ModelServerError
from bot.core.model_facts import served_context_size
from bot.settings import Settings
from bot.storage.context_store import ContextStore

log = logging.getLogger(__name__)


class ModelWatch:
    def __init__(self, settings: Settings, model: ModelClient, store: ContextStore) -> None:
        self._settings, self._model, self._store = settings, model, store
        self.revision: str | None = None

    async def check(self) -> None:
        """One look at /health; a server away or loading is looked at again next time."""
        try:
            health = await self._model.health()
        except ModelServerError:
            return
        revision = health.body.get("model_revision")
        if not health.ready or not isinstance(revision, str) or revision == self.revision:
            return
        if self.revision is not None:
            log.info("model server swapped its model: revision %s (was %s)", revision, self.revision)
        self.revision = revision
        self._store.context_size = served_context_size(self._settings, health.body, self._store.context_size)

    async def run(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._settings.model_watch_s)
