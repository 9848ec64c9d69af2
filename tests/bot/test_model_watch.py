"""The bot follows the model server's hot swaps: a new model_revision is logged, its context size adopted."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.core.model_client import ModelClient
from bot.core.model_watch import ModelWatch
from bot.settings import Settings
from bot.storage.context_store import ContextStore
from bot.storage.db import create_engine


class Health:
    """The model server's /health as the test sets it; ``status`` 0 means the server is down."""

    def __init__(self) -> None:
        self.status = 200
        self.body: dict[str, Any] = {"status": "ok", "context_size": 3, "model_revision": "aaaa"}

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.status == 0:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(self.status, json=self.body)


async def watch_of(tmp_path: Path, health: Health, **settings: Any) -> tuple[ModelWatch, ContextStore]:
    client = httpx.AsyncClient(transport=httpx.MockTransport(health.handle), base_url="http://model")
    model = ModelClient("http://model", 5.0, client=client)
    store = ContextStore(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.sqlite3'}"), 3)
    watch = ModelWatch(Settings(_env_file=None, **settings), model, store)  # type: ignore[call-arg]
    await watch.check()
    return watch, store


async def test_a_swapped_model_is_logged_and_its_context_size_adopted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    health = Health()
    watch, store = await watch_of(tmp_path, health)
    health.status = 0  # down for a moment: nothing changes
    await watch.check()
    health.status, health.body = 200, {"status": "ok", "context_size": 5, "model_revision": "bbbb"}
    await watch.check()
    await watch.check()
    swaps = [r.getMessage() for r in caplog.records if "swapped its model" in r.getMessage()]
    assert swaps == ["model server swapped its model: revision bbbb (was aaaa)"]
    assert store.context_size == 5


async def test_a_set_context_size_stays_through_a_swap(tmp_path: Path) -> None:
    health = Health()
    watch, store = await watch_of(tmp_path, health, context_size=3)
    health.body = {"status": "ok", "context_size": 7, "model_revision": "bbbb"}
    await watch.check()
    assert store.context_size == 3
