"""Groups concurrent requests into shared generate calls, and hands late arrivals to a running one.

Requests wait in a bounded FIFO. One worker takes the first waiting request,
gathers those that follow it closely (or until the batch is full), and runs
the batch in the engine's one worker thread, so the event loop keeps serving
while the model works. An engine that decodes step by step (transformers with
one beam) asks between its steps for requests that arrived meanwhile
(``admit``) and decodes them in the same call; one that cannot (CTranslate2,
beam search) leaves them to form the next batch. Requests with different
sampling overrides (an OpenAI client's ``temperature``) cannot share a call:
a call takes arrivals only while the first waiting one shares its overrides.

A request's answer comes out of :meth:`Batcher.generate` as an async iterator:
its pieces as the model writes them (when streamed), then the whole answer,
as soon as its own row is done. The model's thread hands them over through
the request's own asyncio queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from model_server.engines.base import Admit, Answer, GenerationRequest, SamplingOverrides, StreamItem
from model_server.metrics import ServerMetrics

log = logging.getLogger(__name__)


class QueueFullError(Exception):
    """More requests are waiting than the server accepts."""


@dataclass
class _Pending:
    request: GenerationRequest
    # Pieces, then the answer or the batch's failure.
    outputs: asyncio.Queue[StreamItem | Exception] = field(repr=False)
    # The caller stopped waiting (timed out, went away): the worker skips it.
    abandoned: bool = False


class Batcher:
    def __init__(
        self,
        generate: Callable[[Sequence[GenerationRequest], Admit], list[Answer]],
        *,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_size: int,
        metrics: ServerMetrics,
        executor: ThreadPoolExecutor,
        parallel_calls: int = 1,
        owns_executor: bool = False,
    ) -> None:
        self._generate = generate
        self._max_batch_size = max_batch_size
        self._max_wait_s = max_wait_s
        self._max_queue_size = max_queue_size
        self._metrics = metrics
        # Appended on the event loop; taken by the worker there, or by the engine's thread between
        # steps (``admit``): hence a lock, and an event that wakes the worker on an arrival.
        self._waiting: deque[_Pending] = deque()
        self._lock = threading.Lock()
        self._arrived = asyncio.Event()
        # One thread per call that may run at once: one, but for CTranslate2's replicas.
        self._executor = executor
        self._parallel_calls = parallel_calls
        # Replicas' threads are this batcher's own: a model swapped out lets them go with it.
        self._owns_executor = owns_executor
        self._worker: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()
        # Requests waiting or generating; a batcher being retired stops once none is left.
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._worker = asyncio.create_task(self._work(), name="batcher")

    async def stop(self) -> None:
        tasks = [t for t in (self._worker, *self._calls) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

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
        outputs: asyncio.Queue[StreamItem | Exception] = asyncio.Queue()

        def hand_over(item: StreamItem) -> None:  # in the engine's thread
            with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
                loop.call_soon_threadsafe(outputs.put_nowait, item)

        # The engine's copy of the deadline, on the clock its thread reads.
        request = dataclasses.replace(
            request, deadline=time.monotonic() + timeout_s, on_done=hand_over,
            on_text=hand_over if stream else None,
        )  # fmt: skip
        pending = _Pending(request, outputs)
        with self._lock:
            if len(self._waiting) >= self._max_queue_size:
                raise QueueFullError
            self._waiting.append(pending)
            self._metrics.queue_depth.set(len(self._waiting))
        self._arrived.set()
        self._outstanding += 1
        self._idle.clear()
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    item = await outputs.get()
                if isinstance(item, Exception):
                    raise item
                yield item
                if isinstance(item, Answer):
                    return
        finally:
            pending.abandoned = True

    async def _work(self) -> None:
        # A batch forms only once a call may start: while every replica generates, arrivals wait
        # together and form the next batch, as with one.
        free = asyncio.Semaphore(self._parallel_calls)
        while True:
            await free.acquire()
            batch = await self._gather()
            call = asyncio.create_task(self._serve(batch, free), name="generate")
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _serve(self, batch: list[_Pending], free: asyncio.Semaphore) -> None:
        try:
            groups: dict[SamplingOverrides, list[_Pending]] = {}
            for pending in batch:
                if not pending.abandoned:
                    groups.setdefault(pending.request.overrides, []).append(pending)
            finished = len(batch)
            for group in groups.values():
                finished += await self._run(group)
            self._outstanding -= finished
            if not self._outstanding:
                self._idle.set()
        finally:
            free.release()

    async def _run(self, group: list[_Pending]) -> int:
        """Generate ``group`` and what joins it; how many requests joined (or were skipped) on the way."""
        joined: list[_Pending] = []
        overrides = group[0].request.overrides

        generated: list[GenerationRequest] = []

        def admit(rows: int) -> list[GenerationRequest]:  # in the engine's thread, between steps
            taken = self._take(self._max_batch_size - rows, overrides)
            joined.extend(taken)
            joining = [p.request for p in taken if not p.abandoned]
            generated.extend(joining)
            return joining

        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._generate, [p.request for p in group], admit)
        except Exception as exc:
            log.exception("generation failed for a batch of %d", len(group) + len(joined))
            for p in (*group, *joined):
                p.outputs.put_nowait(exc)
        # Counted as handed over: a joined request is answered (and let go) before the call returns.
        self._metrics.batch_size.observe(len(group) + len(generated))
        return len(joined)

    def _take(self, room: int, overrides: SamplingOverrides | None = None) -> list[_Pending]:
        """Up to ``room`` waiting requests from the front, while they share ``overrides`` (if given)."""
        taken: list[_Pending] = []
        with self._lock:
            while self._waiting and len(taken) < room:
                if overrides is not None and self._waiting[0].request.overrides != overrides:
                    break
                taken.append(self._waiting.popleft())
            if taken:
                self._metrics.queue_depth.set(len(self._waiting))
        return taken

    async def _arrival(self, timeout: float | None) -> bool:
        """Whether a request is waiting, within ``timeout`` seconds (None: for as long as it takes)."""
        while not self._waiting:
            self._arrived.clear()
            try:
                async with asyncio.timeout(timeout):
                    await self._arrived.wait()
            except TimeoutError:
                return False
        return True

    async def _gather(self) -> list[_Pending]:
        """The first waiting request and those arriving right after it.

        A burst of requests reaches the queue over several milliseconds (each is
        parsed and tokenised first), so the wait restarts with every arrival, up
        to ten times ``max_wait_s`` in all; a lone request waits ``max_wait_s``.
        """
        loop = asyncio.get_running_loop()
        await self._arrival(None)
        batch = self._take(self._max_batch_size)
        cap = loop.time() + 10 * self._max_wait_s
        while len(batch) < self._max_batch_size:
            remaining = min(self._max_wait_s, cap - loop.time())
            if remaining <= 0 or not await self._arrival(remaining):
                break
            batch += self._take(self._max_batch_size - len(batch))
        return batch
