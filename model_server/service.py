"""The state the routes share: the loaded model and its batcher."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model_server.batcher import Batcher
from model_server.generator import Generator, load_generator
from model_server.metrics import ServerMetrics
from model_server.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ModelService:
    settings: Settings
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    generator: Generator | None = None
    batcher: Batcher[list[int], str] | None = None
    load_error: str | None = None
    # Every torch call (load, warm-up, batches) runs on this one thread: each thread
    # that enters torch gets its own OpenMP team, and two teams on few cores were
    # measured to slow generation by a third.
    torch_thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
    )

    @property
    def ready(self) -> bool:
        return self.batcher is not None

    async def load(self, on_failure: Callable[[str], None] | None = None) -> None:
        """Load the model off the event loop, warm it up, then accept requests."""
        loop = asyncio.get_running_loop()
        try:
            generator = await loop.run_in_executor(self.torch_thread, load_generator, self.settings)
            # One real generation proves the model can answer before /health says so.
            await loop.run_in_executor(
                self.torch_thread, generator.generate, [generator.encode([], "привет")]
            )
        except Exception as exc:
            self.load_error = str(exc) if str(exc) else type(exc).__name__
            log.error("model server cannot start: %s", self.load_error)
            if on_failure is not None:
                on_failure(self.load_error)
            return
        batcher: Batcher[list[int], str] = Batcher(
            self._generate,
            max_batch_size=self.settings.max_batch_size,
            max_wait_s=self.settings.max_batch_wait_ms / 1000,
            max_queue_size=self.settings.max_queue_size,
            metrics=self.metrics,
            executor=self.torch_thread,
        )
        batcher.start()
        self.generator, self.batcher = generator, batcher
        log.info("ready to answer")

    def _generate(self, prompts: Sequence[list[int]]) -> list[str]:
        # Looked up per batch, so a test can wrap the generator of a running server.
        assert self.generator is not None
        return self.generator.generate(prompts)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self.torch_thread.shutdown(wait=False, cancel_futures=True)
