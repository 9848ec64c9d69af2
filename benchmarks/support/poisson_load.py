"""Requests arriving as a Poisson process, answered whole over ``/answer`` or streamed over ``/v1`` SSE.

What a user waits under real traffic: the server's capacity says how many
requests it answers at once, these say how long each of them takes when they
arrive at random. A streamed request is timed twice, to its first piece of text
(the reader sees the answer begin) and to its ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
# Targets of issue 19: streamed answers under 70% load against a lone request.
TTFT_TARGET = 3.0
TOTAL_TARGET = 2.5


async def arrivals(
    ask: Callable[[int], Coroutine[Any, Any, T]], rate: float, count: int, seed: int
) -> list[T]:
    """``count`` calls of ``ask(i)`` started as a Poisson process of ``rate`` per second."""
    rng = random.Random(seed)
    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(ask(i)))
        await asyncio.sleep(rng.expovariate(rate))
    return list(await asyncio.gather(*tasks))


async def answered(client: httpx.AsyncClient, query: str, context: list[dict]) -> float:
    """Seconds until ``/answer`` answered ``query``."""
    started = time.perf_counter()
    (await client.post("/answer", json={"query": query, "context": context})).raise_for_status()
    return time.perf_counter() - started


@dataclass(frozen=True)
class Streamed:
    first: float  # seconds to the first piece of text
    total: float  # seconds to [DONE]


async def streamed(client: httpx.AsyncClient, model: str, query: str, context: list[dict]) -> Streamed:
    """One answer streamed over /v1/chat/completions, timed to its first piece and to its end."""
    messages = [
        {"role": "user" if t["role"] == "user" else "assistant", "content": t["text"]} for t in context
    ]
    messages.append({"role": "user", "content": query})
    payload = {"model": model, "messages": messages, "stream": True}
    started = time.perf_counter()
    first = None
    async with client.stream("POST", "/v1/chat/completions", json=payload) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if "error" in chunk:
                raise RuntimeError(f"the stream failed: {chunk['error']}")
            if first is None and any(c["delta"].get("content") for c in chunk["choices"]):
                first = time.perf_counter()
    done = time.perf_counter()
    if first is None:
        raise RuntimeError("a streamed answer without text")
    return Streamed(first - started, done - started)


def p95(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


@dataclass(frozen=True)
class StreamFigures:
    """One server's lone streamed request (medians) and its streamed requests under load."""

    rate: float
    lone: list[Streamed]
    loaded: list[Streamed]

    def row(self, label: str) -> str:
        cells = [f"{label:<34} {self.rate:>6.3f}"]
        for part, target in (("first", TTFT_TARGET), ("total", TOTAL_TARGET)):
            lone = statistics.median(getattr(s, part) for s in self.lone)
            loaded = [getattr(s, part) for s in self.loaded]
            ratio = p95(loaded) / lone
            verdict = "ok" if ratio <= target else "MISS"
            middle = statistics.median(loaded)
            cells.append(f"{lone:>7.3f} {middle:>7.3f} {p95(loaded):>7.3f} {ratio:>6.2f} {verdict:>4}")
        return "  ".join(cells)


def print_stream_table(figures: dict[str, StreamFigures], clients: int, requests: int) -> None:
    print(
        f"\nstreamed over /v1/chat/completions (SSE): a lone request (median), then Poisson arrivals at 70% "
        f"of each server's {clients}-client capacity, {requests} requests, greedy; seconds"
    )
    head = f"{'lone':>7} {'p50':>7} {'p95':>7} {'p95/1':>6} {'':>4}"
    print(f"{'':<34} {'':>6}  {'time to first token':^35}  {'total':^35}")
    print(f"{'server':<34} {'req/s':>6}  {head}  {head}")
    for label, figure in figures.items():
        print(figure.row(label))
    print(f"targets: p95 time to first token <= {TTFT_TARGET}x lone, p95 total <= {TOTAL_TARGET}x lone")


async def stream_figures(
    urls: dict[str, str],
    rates: dict[str, float],
    model: str,
    queries: Sequence[str],
    context: list[dict],
    *,
    lone: int,
    count: int,
) -> dict[str, StreamFigures]:
    """Each server's lone streamed requests (the servers take turns), then its Poisson run."""
    clients = {label: httpx.AsyncClient(base_url=url, timeout=900) for label, url in urls.items()}
    try:
        alone: dict[str, list[Streamed]] = {label: [] for label in urls}
        for i in range(lone + 1):  # the first, a warm-up of the stream's path, is not counted
            for label, client in clients.items():
                one = await streamed(client, model, queries[i % len(queries)], context)
                if i:
                    alone[label].append(one)
        figures = {}
        for label, client in clients.items():

            def ask(i: int, client: httpx.AsyncClient = client) -> Coroutine[Any, Any, Streamed]:
                return streamed(client, model, queries[i % len(queries)], context)

            loaded = await arrivals(ask, rates[label], count, seed=1)
            figures[label] = StreamFigures(rates[label], alone[label], loaded)
        return figures
    finally:
        for client in clients.values():
            await client.aclose()
