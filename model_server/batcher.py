"""Groups concurrent requests into shared generate calls.

Requests wait in a bounded queue. One worker takes the first waiting request,
gathers those that follow it closely (or until the batch is full), and runs
the batch in the engine's one worker thread, so the event loop keeps serving
while the model works. While a batch generates, new requests queue up and form
the next. Requests with different sampling overrides (an OpenAI client's
``temperature``) cannot share a call: a batch runs one call per set of them.

A request's answer comes out of :meth:`Batcher.generate` as an async iterator:
its pieces as the model writes them (when streamed), then the whole answer.
The model's thread hands them over through the request's own queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model_server.engines.base import Answer, GenerationRequest, SamplingOverrides, StreamItem
from model_server.metrics import ServerMetrics

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """More requests are waiting than the server accepts."""


@dataclass
class _Pending:
    request: GenerationRequest
    # Pieces, then the answer or the batch's failure.
    outputs: asyncio.Queue[StreamItem | Exception] = field(default_factory=asyncio.Queue, repr=False)
    # The caller stopped waiting (timed out, went away): the worker skips it.
    abandoned: bool = False


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
        # Requests queued or generating; a batcher being retired stops once none is left.
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="batcher")

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)

    async def drain(self) -> None:
        """Answer every request already queued, then stop (a model swapped out finishes its own)."""
        try:
            await self._idle.wait()
        finally:
            await self.stop()

    async def generate(
        self, request: GenerationRequest, timeout_s: float, *, stream: bool = False
    ) -> AsyncIterator[StreamItem]:
        """The pieces of ``request``'s answer when ``stream``, then the Answer.

        QueueFullError when full, TimeoutError once ``timeout_s`` have passed since the call.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        # The engine's copy of the deadline, on the clock its thread reads.
        pending = _Pending(dataclasses.replace(request, deadline=time.monotonic() + timeout_s))
        if stream:

            def on_text(piece: str) -> None:  # in the engine's thread
                with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                    loop.call_soon_threadsafe(pending.outputs.put_nowait, piece)

            pending.request = dataclasses.replace(pending.request, on_text=on_text)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            raise QueueFullError from None
        self._outstanding += 1
        self._idle.clear()
        self._metrics.queue_depth.set(self._queue.qsize())
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    item = await pending.outputs.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if isinstance(item, Answer):
                    return
        finally:
            pending.abandoned = True

    async def _work(self) -> None:
        while True:
            batch = await self._gather()
            self._metrics.queue_depth.set(self._queue.qsize())
            groups: dict[SamplingOverrides, list[_Pending]] = {}
            for pending in batch:
                if not pending.abandoned:
                    groups.setdefault(pending.request.overrides, []).append(pending)
            for group in groups.values():
                await self._run(group)
            self._outstanding -= len(batch)
            if not self._outstanding:
                self._idle.set()

    async def _run(self, group: list[_Pending]) -> None:
        self._metrics.batch_size.observe(len(group))
        loop = asyncio.get_running_loop()
        try:
            answers = await loop.run_in_executor(self._executor, self._generate, [p.request for p in group])
        except Exception as exc:
            log.exception("generation failed for a batch of %d", len(group))
            for p in group:
                p.outputs.put_nowait(exc)
            return
        for p, answer in zip(group, answers, strict=True):
            p.outputs.put_nowait(answer)

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
