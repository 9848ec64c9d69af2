"""The state the routes share, and the one method they ask for answers through.

:meth:`ModelService.generate` is an async iterator, as vLLM's
``EngineClient.generate`` is: a streamed answer's pieces, then the whole
answer, which is all a request that does not stream gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from dialogue.format import Turn
from model_server.batcher import Batcher, QueueFullError
from model_server.engines.base import Answer, Engine, GenerationRequest, SamplingOverrides, StreamItem
from model_server.loading import load_engine
from model_server.metrics import ServerMetrics
from model_server.settings import Settings

log = logging.getLogger(__name__)
NO_OVERRIDES = SamplingOverrides()

__all__ = ["EmptyQueryError", "ModelService", "NotReadyError", "QueueFullError", "UnsupportedRequestError"]


class NotReadyError(Exception):
    """The model is still loading, or failed to load."""


class EmptyQueryError(ValueError):
    """The query has no text once normalised."""


class UnsupportedRequestError(ValueError):
    """The request asks for something this engine or its settings cannot do; the message says what."""


@dataclass
class ModelService:
    settings: Settings
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
    engine: Engine | None = None
    batcher: Batcher | None = None
    load_error: str | None = None
    # Every model call (load, warm-up, batches) runs on this one thread: each thread
    # that enters torch gets its own OpenMP team, and two teams on few cores were
    # measured to slow generation by a third. CTranslate2 runs here too, off the event loop.
    worker: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")
    )

    @property
    def ready(self) -> bool:
        """Loaded and warmed up: the one "can it answer" check."""
        return self.batcher is not None

    async def generate(
        self,
        context: Sequence[Turn],
        query: str,
        *,
        max_new_tokens: int | None = None,
        stop: Sequence[str] = (),
        overrides: SamplingOverrides = NO_OVERRIDES,
        stream: bool = False,
    ) -> AsyncIterator[StreamItem]:
        """The answer to ``query`` after ``context``, generated in a shared batch.

        With ``stream``, the answer's pieces come first, as they are generated;
        the last item is the whole Answer. Raises EmptyQueryError,
        UnsupportedRequestError, NotReadyError, QueueFullError, or TimeoutError
        past the request timeout.
        """
        if self.batcher is None or self.engine is None:
            raise NotReadyError
        if max_new_tokens is not None and max_new_tokens > self.engine.max_new_tokens:
            raise UnsupportedRequestError(
                f"max_tokens may be at most {self.engine.max_new_tokens} on this server (GEN_MAX_NEW_TOKENS)"
            )
        if overrides.seed is not None and not self.engine.honours_seed:
            raise UnsupportedRequestError(f"seed: the {self.engine.name} engine cannot seed one request")
        try:
            prompt = self.engine.encode(context, query)
        except ValueError:
            raise EmptyQueryError("query is empty") from None
        request = GenerationRequest(
            prompt, max_new_tokens or self.engine.max_new_tokens, tuple(stop), overrides=overrides
        )
        async for item in self.batcher.generate(request, self.settings.request_timeout_s, stream=stream):
            yield item

    async def answer(self, context: Sequence[Turn], query: str) -> Answer:
        """The whole answer, not streamed: the one item of :meth:`generate`."""
        async for item in self.generate(context, query):
            answer = item
        assert isinstance(answer, Answer)
        return answer

    def describe(self) -> dict[str, object]:
        """What /health tells about the loaded engine; empty before it is ready."""
        engine = self.engine
        if not self.ready or engine is None:
            return {}
        return {
            "engine": engine.name, "compute_type": engine.compute_type, "device": engine.device,
            "context_size": engine.context_size, "notes": engine.notes or None,
        }  # fmt: skip

    async def load(self, on_failure: Callable[[str], None] | None = None) -> None:
        """Load the model off the event loop, warm it up, then accept requests."""
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(self.worker, load_engine, self.settings)
            # One real generation proves the model can answer before /health says so.
            warm_up = GenerationRequest(engine.encode([], "привет"), engine.max_new_tokens)
            await loop.run_in_executor(self.worker, engine.generate, [warm_up])
        except Exception as exc:
            self.load_error = str(exc) if str(exc) else type(exc).__name__
            log.error("model server cannot start: %s", self.load_error)
            if on_failure is not None:
                on_failure(self.load_error)
            return
        batcher = Batcher(
            self._generate,
            max_batch_size=self.settings.max_batch_size,
            max_wait_s=self.settings.max_batch_wait_ms / 1000,
            max_queue_size=self.settings.max_queue_size,
            metrics=self.metrics,
            executor=self.worker,
        )
        batcher.start()
        self.engine, self.batcher = engine, batcher
        log.info("ready to answer")

    def _generate(self, requests: Sequence[GenerationRequest]) -> list[Answer]:
        # Looked up per batch, so a test can wrap the engine of a running server.
        assert self.engine is not None
        return self.engine.generate(requests)

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.stop()
        self.worker.shutdown(wait=False, cancel_futures=True)
