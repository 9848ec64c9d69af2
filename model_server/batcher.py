"""Groups concurrent requests into shared ``generate`` calls.

Requests wait in a bounded queue. One worker takes the first waiting request,
gathers those that follow it closely (or until the batch is full), and runs
the batch in the model's one worker thread, so the event loop keeps serving while
torch works. While a batch generates, new requests queue up and form the next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from model_server.metrics import ServerMetrics

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class QueueFullError(Exception):
    """More requests are waiting than the server accepts."""


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    future: asyncio.Future[Result] = field(repr=False)


class Batcher(Generic[Item, Result]):
    def __init__(
        self,
        run_batch: Callable[[Sequence[Item]], list[Result]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_size: int,
        metrics: ServerMetrics,
        executor: ThreadPoolExecutor,
    ) -> None:
        self._run_batch = run_batch
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._metrics = metrics
        self._queue: asyncio.Queue[_Pending[Item, Result]] = asyncio.Queue(max_queue_size)
        # A single thread: batches run one after another on the model.
        self._executor = executor
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def submit(self, item: Item, timeout_s: float) -> Result:
        """Result for ``item``; QueueFullError when full, TimeoutError past ``timeout_s``."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(item, future))
        except asyncio.QueueFull:
            raise QueueFullError from None
        self._metrics.queue_depth.set(self._queue.qsize())
        # On timeout wait_for cancels the future, and the worker skips it.
        return await asyncio.wait_for(future, timeout_s)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather()
            self._metrics.queue_depth.set(self._queue.qsize())
            batch = [p for p in batch if not p.future.done()]
            if not batch:
                continue
            self._metrics.batch_size.observe(len(batch))
            try:
                results = await loop.run_in_executor(self._executor, self._run_batch, [p.item for p in batch])
            except Exception as exc:
                log.exception("generation failed for a batch of %d", len(batch))
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                continue
            for p, result in zip(batch, results, strict=True):
                if not p.future.done():
                    p.future.set_result(result)

    async def _gather(self) -> list[_Pending[Item, Result]]:
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
