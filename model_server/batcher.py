"""Groups concurrent requests into shared generate calls.

Requests wait in a bounded queue. One worker takes the first waiting request,
gathers those that follow it closely (or until the batch is full), and runs
the batch in the engine's one worker thread, so the event loop keeps serving
while the model works. While a batch generates, new requests queue up and form
the next. Requests with different sampling overrides (an OpenAI client's
``temperature``) cannot share a call: a batch runs one call per set of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model_server.engines.base import Answer, GenerationRequest, SamplingOverrides
from model_server.metrics import ServerMetrics

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """More requests are waiting than the server accepts."""


@dataclass
class _Pending:
    request: GenerationRequest
    future: asyncio.Future[Answer] = field(repr=False)


class Batcher:
    def __init__(
        self,
        generate: Callable[[Sequence[GenerationRequest]], list[Answer]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_size: int,
        metrics: ServerMetrics,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._generate = generate
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._metrics = metrics
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(max_queue_size)
        # A single thread: batches run one after another on the model.
        self._executor = executor
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, request: GenerationRequest, timeout_s: float) -> Answer:
        """The answer to ``request``; QueueFullError when full, TimeoutError past ``timeout_s``."""
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(request, future))
        except asyncio.QueueFull:
            raise QueueFullError from None
        self._metrics.queue_depth.set(self._queue.qsize())
        # On timeout wait_for cancels the future, and the worker skips it.
        return await asyncio.wait_for(future, timeout_s)

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            self._metrics.queue_depth.set(self._queue.qsize())
            groups: dict[SamplingOverrides, list[_Pending]] = {}
            for pending in batch:
                if not pending.future.done():
                    groups.setdefault(pending.request.overrides, []).append(pending)
            for group in groups.values():
                await self._run(group)

    async def _run(self, group: list[_Pending]) -> None:
        self._metrics.batch_size.observe(len(group))
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self._executor, self._generate, [p.request for p in group])
        except Exception as exc:
            log.exception("generation failed for a batch of %d", len(group))
            for p in group:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        for p, answer in zip(group, answers, strict=True):
            if not p.future.done():
                p.future.set_result(answer)

    async def _gather(self) -> list[_Pending]:
        """The first waiting request and those arriving right after it.

        A burst of requests reaches the queue over several milliseconds (each is
        parsed and tokenised first), so the wait restarts with every arrival, up
        to ten times ``max_wait_s`` in all; a lone request waits ``max_wait_s``.
        """
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        cap = loop.time() + 10 * self._max_wait_s
        while len(batch) < self._max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = min(self._max_wait_s, cap - loop.time())
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch
