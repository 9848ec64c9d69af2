"""Continuous batching as a user sees it: a request that arrives while a long answer is being
written joins it, gets the answer it would get alone, and gets it as soon as its own row is done.

The model here never ends an answer early (see :func:`build_endless_model`), so
every answer runs its whole token budget and a long request really is long.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.server_throughput import silent_tokens
from benchmarks.support.tiny_model import build_tokenizer
from model_server.engines.base import Answer, GenerationRequest
from model_server.engines.transformers import TransformersEngine
from model_server.loading import load_engine
from model_server.settings import Settings
from tests.model_server.conftest import LiveServer, greedy, serve
from tests.model_server.test_api import metric

LONG, SHORT = 100, 6
QUERY_A = "расскажи что-нибудь интересное про космос"
QUERY_B = "привет"
SEEDED = {"temperature": 1.0, "seed": 7}
ANSWERED = 'http_requests_total{route="/v1/chat/completions",status="200"}'


def build_endless_model(out_dir: Path) -> Path:
    """A tiny GPT-2 that can neither write "@" (the speaker tag), EOS, nor a token that prints nothing.

    Coordinate 0 of the final layer norm's output is a constant 100, and only
    those tokens' (tied) embedding rows have a -1 there: their logits are -100
    whatever came before, so neither greedy decoding nor sampling at
    temperature 1 picks them, and every answer streams text to its last token.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tokenizer()
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer) + 8, n_positions=256, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=eos, eos_token_id=eos,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config)
    silent = silent_tokens(tokenizer, config.vocab_size)
    with torch.no_grad():
        embedding = model.transformer.wte.weight
        embedding[:, 0] = 0
        embedding[silent] = 0
        embedding[silent, 0] = -1
        model.transformer.ln_f.weight[0] = 0
        model.transformer.ln_f.bias[0] = 100
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def endless_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_endless_model(tmp_path_factory.mktemp("endless-model"))


def endless_settings(model_dir: Path, engine: str) -> Settings:
    return Settings(
        model_name_or_path=str(model_dir), engine=engine, engine_compute_type="float32",
        generation=greedy(max_new_tokens=LONG), request_timeout_s=20,  # a request left behind fails soon
    )  # fmt: skip


@pytest.fixture(scope="module")
def transformers_server(endless_model_dir: Path) -> Iterator[LiveServer]:
    with serve(endless_settings(endless_model_dir, "transformers")) as live:
        yield live


@dataclass
class Reply:
    text: str
    finish_reason: str
    ended: float  # time.monotonic() when its last byte arrived


async def chat(
    live: LiveServer, client: httpx.AsyncClient, query: str, max_tokens: int,
    first: asyncio.Event | None = None, **extra: Any,
) -> Reply:  # fmt: skip
    """One /v1/chat/completions answer; streamed when ``first`` is given, which is set at its first piece."""
    body = {
        "model": live.service.settings.model_name_or_path, "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": query}], "stream": first is not None,
    } | extra  # fmt: skip
    if first is None:
        response = await client.post("/v1/chat/completions", json=body)
        response.raise_for_status()
        choice = response.json()["choices"][0]
        return Reply(choice["message"]["content"], choice["finish_reason"], time.monotonic())
    text, reason = "", ""
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            choice = json.loads(line.removeprefix("data: "))["choices"][0]
            text += choice["delta"].get("content") or ""
            reason = choice["finish_reason"] or reason
            if text:
                first.set()
    return Reply(text, reason, time.monotonic())


async def generate_calls(client: httpx.AsyncClient) -> tuple[float, float]:
    """How many generate calls the server made, and how many requests they answered in all.

    A call is counted when it returns, which may be after its last answer went
    out: this waits (up to 5 s) until every answered chat request is counted.
    """
    deadline = time.monotonic() + 5
    while True:
        text = (await client.get("/metrics")).text
        calls, answered = metric(text, "generate_batch_size_count"), metric(text, "generate_batch_size_sum")
        if answered >= metric(text, ANSWERED) or time.monotonic() > deadline:
            return calls, answered
        await asyncio.sleep(0.01)


async def calls_since(client: httpx.AsyncClient, before: tuple[float, float]) -> tuple[float, float]:
    calls, answered = await generate_calls(client)
    return calls - before[0], answered - before[1]


@dataclass
class Overlap:
    alone: tuple[Reply, Reply]
    together: tuple[Reply, Reply]
    sent_b: float  # when B was sent, A having streamed its first pieces
    calls: tuple[float, float]  # generate calls, requests answered: from A's start to B's and A's end


async def overlap(live: LiveServer, long: int = LONG, **extra: Any) -> Overlap:
    """A long streamed answer A, and a short B sent once A's first pieces arrived; then each alone."""
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        alone_a = await chat(live, client, QUERY_A, long, asyncio.Event(), **extra)
        alone_b = await chat(live, client, QUERY_B, SHORT, **extra)
        before = await generate_calls(client)
        first = asyncio.Event()
        a = asyncio.create_task(chat(live, client, QUERY_A, long, first, **extra))
        await asyncio.wait_for(first.wait(), 30)
        sent_b = time.monotonic()
        b = await chat(live, client, QUERY_B, SHORT, **extra)
        together = (await a, b)
        calls = await calls_since(client, before)
    assert together[0].ended > sent_b, "A ended before B was sent: the test needs a longer A"
    return Overlap((alone_a, alone_b), together, sent_b, calls)


def assert_same_answers(run: Overlap) -> None:
    (alone_a, alone_b), (a, b) = run.alone, run.together
    assert (a.text, a.finish_reason) == (alone_a.text, "length")
    assert (b.text, b.finish_reason) == (alone_b.text, "length")
    assert len(a.text) > len(b.text) > 0


def assert_joined(run: Overlap) -> None:
    a, b = run.together
    assert b.ended < a.ended, "B waited for A's call to end instead of joining it"
    assert run.calls == (1, 2), f"A and B were not answered by one generate call: {run.calls}"


async def test_a_request_sent_mid_answer_joins_it_and_ends_first(transformers_server: LiveServer) -> None:
    run = await overlap(transformers_server)
    assert_same_answers(run)
    assert_joined(run)


async def test_seeded_sampling_gives_each_request_its_own_answer_in_a_shared_call(
    transformers_server: LiveServer,
) -> None:
    run = await overlap(transformers_server, **SEEDED)
    assert_same_answers(run)
    assert_joined(run)
    # Sampled, not greedy: the seed picks the answer.
    async with httpx.AsyncClient(base_url=transformers_server.url, timeout=60) as client:
        greedy_b = await chat(transformers_server, client, QUERY_B, SHORT)
        other_seed = await chat(transformers_server, client, QUERY_B, SHORT, **(SEEDED | {"seed": 8}))
    assert run.alone[1].text not in (greedy_b.text, other_seed.text)


async def test_a_short_answer_comes_back_before_the_long_one_it_was_batched_with(
    transformers_server: LiveServer,
) -> None:
    live = transformers_server
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        before = await generate_calls(client)
        started = time.monotonic()
        long, short = await asyncio.gather(
            chat(live, client, QUERY_A, LONG), chat(live, client, QUERY_B, SHORT)
        )
        calls = await calls_since(client, before)
    assert calls == (1, 2), "not one generate call"
    assert short.ended - started < 0.5 * (long.ended - started)


async def test_ctranslate2_answers_a_request_sent_mid_answer_as_alone_in_the_next_call(
    endless_model_dir: Path,
) -> None:
    with serve(endless_settings(endless_model_dir, "ctranslate2")) as live:
        run = await overlap(live)
    assert_same_answers(run)
    assert run.calls == (2, 2), "CTranslate2 cannot add rows: B waits for a call of its own"
    assert run.together[1].ended > run.together[0].ended


async def test_ctranslate2_replicas_start_a_request_sent_mid_answer_on_the_free_one(
    endless_model_dir: Path,
) -> None:
    # A longer A than LONG: CTranslate2 writes the tiny model's tokens fast, and B must start inside A.
    long = 230
    settings = endless_settings(endless_model_dir, "ctranslate2").model_copy(
        update={"engine_replicas": 2, "generation": greedy(max_new_tokens=long)}
    )
    with serve(settings) as live:
        run = await overlap(live, long)
        running = replica_threads()
    assert_same_answers(run)
    assert run.calls == (2, 2), "each request in a call of its own, on its own replica"
    a, b = run.together
    assert b.ended < a.ended, "B waited for A's replica instead of taking the free one"
    assert len(running) == 2
    deadline = time.monotonic() + 5
    while replica_threads() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not replica_threads(), "the replicas' threads outlived the server"


def replica_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("replica")]


def test_rows_joining_at_staggered_steps_decode_the_tokens_they_decode_alone(
    endless_model_dir: Path,
) -> None:
    engine = load_engine(endless_settings(endless_model_dir, "transformers"))
    assert isinstance(engine, TransformersEngine)
    assert engine.generation_config.repetition_penalty == 1.2
    assert engine.generation_config.no_repeat_ngram_size == 2
    queries = ["привет", "что ты сегодня делал вечером?", "спокойной ночи", "посоветуй хороший фильм"]
    budgets = [60, 20, 45, 30]
    requests = [GenerationRequest(engine.encode([], q), n) for q, n in zip(queries, budgets, strict=True)]
    alone = [engine.generate([r])[0] for r in requests]
    model_generate = [
        engine._generate([r], engine._config(r.overrides, r.max_new_tokens))[0] for r in requests
    ]
    assert alone == model_generate
    assert [a.completion_tokens for a in alone] == budgets

    delivered: list[tuple[int, Answer]] = []
    tracked = [
        replace(r, on_done=lambda answer, i=i: delivered.append((i, answer))) for i, r in enumerate(requests)
    ]
    # Between steps 3 and 4 one request joins; between steps 10 and 11, two of different lengths.
    joining = {3: [tracked[1]], 10: [tracked[2], tracked[3]]}
    steps = itertools.count()
    seen_rows: list[int] = []

    def admit(rows: int) -> list[GenerationRequest]:
        seen_rows.append(rows)
        return joining.get(next(steps), [])

    assert engine.generate([tracked[0]], admit) == [alone[0]]
    assert seen_rows[3:5] == [1, 2] and seen_rows[10:12] == [2, 4]
    # Each answer went out when its own row was done: the shortest first.
    assert [i for i, _ in delivered] == [1, 3, 2, 0]
    assert dict(delivered) == dict(enumerate(alone))
