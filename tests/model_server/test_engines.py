"""Both engines through the real loading path: conversion, its cache, settings they cannot honour."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

from benchmarks.support.net import free_port
from benchmarks.support.tiny_model import build_tiny_model
from model_server.engines import base
from model_server.engines.base import GenerationRequest, SamplingOverrides
from model_server.engines.ctranslate2 import CTranslate2Engine
from model_server.loading import load_engine
from model_server.settings import GenerationSettings, Settings
from tests.model_server.conftest import ENGINES, build_serving_model, greedy, serve


def test_cpu_default_is_ctranslate2_int8_sampling_with_one_beam(serving_model_dir: Path) -> None:
    # The model card's defaults: beam search with sampling, which CTranslate2 cannot do.
    settings = Settings(model_name_or_path=str(serving_model_dir), generation=GenerationSettings())
    with serve(settings) as live:
        health = httpx.get(f"{live.url}/health").json()
        answer = httpx.post(f"{live.url}/answer", json={"query": "привет"}, timeout=30)
    assert answer.status_code == 200
    if torch.cuda.is_available():
        pytest.skip("auto picks transformers on CUDA")
    assert (health["engine"], health["compute_type"]) == ("ctranslate2", "int8")
    assert any("one beam" in note and "top_k=10" in note for note in health["notes"])
    engine = live.service.engine
    assert isinstance(engine, CTranslate2Engine)
    assert engine.options["beam_size"] == 1 and engine.options["sampling_topk"] == 10


def run_server(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
    return subprocess.run(
        [sys.executable, "-m", "model_server"],
        env=clean | {"PORT": str(free_port()), "ENGINE": "ctranslate2"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GEN_NUM_BEAMS": "3"}, "GEN_NUM_BEAMS=3"),
        ({"GEN_DO_SAMPLE": "false", "GEN_MIN_P": "0.1"}, "GEN_MIN_P"),
    ],
)
def test_an_explicit_setting_ctranslate2_cannot_honour_stops_the_start_with_one_line(
    serving_model_dir: Path, env: dict[str, str], named: str
) -> None:
    result = run_server({"MODEL_NAME_OR_PATH": str(serving_model_dir)} | env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("model_server: ") and named in last and "CTranslate2" in last


@pytest.fixture
def counted_steps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every token an engine hands to an answer's tracker."""
    steps: list[int] = []
    real = base.AnswerTracker.push

    def push(self: base.AnswerTracker, token_id: int) -> bool:
        steps.append(token_id)
        return real(self, token_id)

    monkeypatch.setattr(base.AnswerTracker, "push", push)
    yield steps


def test_an_answer_ends_at_eos_even_when_text_follows(tiny_tokenizer) -> None:
    tok = tiny_tokenizer
    tracker = base.AnswerTracker(tok, GenerationRequest([], 40), ())
    tokens = tok(" привет")["input_ids"] + [tok.eos_token_id] + tok(" ещё")["input_ids"]
    assert any(tracker.push(token) for token in tokens)
    # Usage counts the tokens generated up to the end, EOS included, not those after it.
    generated = len(tok(" привет")["input_ids"]) + 1
    assert tracker.answer == base.Answer("привет", "stop", prompt_tokens=0, completion_tokens=generated)


@pytest.mark.parametrize("engine", ENGINES)
def test_generation_stops_at_the_speaker_tag_instead_of_running_every_step(
    tiny_model_dir: Path, counted_steps: list[int], engine: str
) -> None:
    # The shared tiny model starts its answers with "@@": the next speaker's tag.
    loaded = load_engine(
        Settings(model_name_or_path=str(tiny_model_dir), engine=engine, generation=greedy(max_new_tokens=40))
    )
    prompts = [loaded.encode([], q) for q in ("привет, как дела?", "что делаешь?")]
    answers = loaded.generate([GenerationRequest(p, 40) for p in prompts])
    assert [a.text for a in answers] == ["", ""]
    # Each row stopped after its first token or two; the batch did not run 40 steps.
    assert len(counted_steps) <= 2 * 3, counted_steps


def test_ctranslate2_batches_prompts_of_any_length_unless_that_would_change_an_answer(
    serving_model_dir: Path,
) -> None:
    """Sampled rows share one call; greedy rows with the penalties go by prompt length.

    Read together, a longer prompt's tokens past the shortest one's count for
    the penalties, which would make a greedy answer depend on its batch.
    """
    engine = load_engine(
        Settings(
            model_name_or_path=str(serving_model_dir),
            engine="ctranslate2",
            engine_compute_type="float32",
            generation=greedy(),
        )
    )
    assert isinstance(engine, CTranslate2Engine)
    queries = ["космос", "космос ошибка парк", "вопрос номер 3", "вопрос номер 4"]
    prompts = [engine.encode([], q) for q in queries]
    assert len({len(p) for p in prompts}) == 3
    calls: list[int] = []
    real = engine.generator.generate_batch

    def counted(tokens: list[list[str]], **options: object) -> object:
        calls.append(len(tokens))
        return real(tokens, **options)

    engine.generator = type("Counted", (), {"generate_batch": staticmethod(counted)})()  # type: ignore[assignment]
    alone = [engine.generate([GenerationRequest(p, 40)])[0] for p in prompts]
    calls.clear()
    assert engine.generate([GenerationRequest(p, 40) for p in prompts]) == alone
    assert sorted(calls) == [1, 1, 2]
    calls.clear()
    sampled = SamplingOverrides(temperature=1.0)
    engine.generate([GenerationRequest(p, 40, overrides=sampled) for p in prompts])
    assert calls == [4]


def test_torch_threads_sets_torch_and_ctranslate2(serving_model_dir: Path) -> None:
    before = torch.get_num_threads()
    try:
        loaded = load_engine(
            Settings(model_name_or_path=str(serving_model_dir), engine="ctranslate2", torch_threads=1)
        )
        assert isinstance(loaded, CTranslate2Engine)
        assert (torch.get_num_threads(), loaded.threads) == (1, 1)
    finally:
        torch.set_num_threads(before)


def conversions(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []


def test_conversion_is_cached_by_content_and_compute_type_and_reused(
    tmp_path: Path, conversion_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = build_serving_model(tmp_path / "model")
    caplog.set_level(logging.INFO, logger="model_server")
    settings = Settings(model_name_or_path=str(model), engine="ctranslate2", generation=greedy())
    first = load_engine(settings)
    ours = [name for name in conversions(conversion_cache) if name.startswith("model--")]
    assert len(ours) == 1 and ours[0].endswith("--int8")
    assert not [n for n in conversions(conversion_cache) if n.startswith(".")], "no half-written folder left"
    assert any("converted" in r.getMessage() and " s: " in r.getMessage() for r in caplog.records)
    caplog.clear()
    again = load_engine(settings)
    assert any("reused" in r.getMessage() for r in caplog.records)
    assert not any("converted" in r.getMessage() for r in caplog.records)
    prompt = first.encode([], "привет")
    assert first.generate([GenerationRequest(prompt, 20)]) == again.generate([GenerationRequest(prompt, 20)])

    load_engine(settings.model_copy(update={"engine_compute_type": "float32"}))
    build_serving_model(model, seed=11)  # retrained in place: new weights, new conversion
    load_engine(settings)
    ours = [name for name in conversions(conversion_cache) if name.startswith("model--")]
    assert len(ours) == 3 and sum(name.endswith("--int8") for name in ours) == 2


def test_convert_command_prepares_the_cache_ahead_of_time(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "ahead")
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "model_server.convert", "--model", str(model), "--cache-dir", str(cache)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip().splitlines()[-1])
    assert out.parent == cache and (out / "model.bin").is_file() and out.name.endswith("--int8")
    missing = subprocess.run([*command[:4], str(tmp_path / "nothing")], capture_output=True, text=True)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().startswith("model_server.convert: cannot convert")


def build_long_winded_model(out_dir: Path) -> Path:
    """A GPT-2 with 1024 positions whose greedy answer to "привет" runs its whole 1000-token budget.

    Seed 5 was picked for that: seeds 0-4 stop early at EOS or the speaker tag.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    from benchmarks.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=1024, n_embd=256, n_layer=4, n_head=4,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(5)
    GPT2LMHeadModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


@pytest.fixture
def restored_torch_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("restored_torch_threads")  # one thread: slow enough to see the difference
def test_a_timed_out_request_stops_the_ctranslate2_engine_at_its_deadline(tmp_path: Path) -> None:
    model = build_long_winded_model(tmp_path / "long")
    settings = Settings(
        model_name_or_path=str(model), engine="ctranslate2", engine_compute_type="float32",
        generation=greedy(max_new_tokens=1000), request_timeout_s=0.3, torch_threads=1,
    )  # fmt: skip
    with serve(settings) as live:
        engine = live.service.engine
        assert engine is not None
        started = time.monotonic()
        unbounded = engine.generate([GenerationRequest(engine.encode([], "привет"), 1000)])[0]
        unbounded_s = time.monotonic() - started
        assert unbounded.finish_reason == "length" and unbounded_s > 1.0, (unbounded, unbounded_s)
        returned: list[float] = []  # when each generate call returned
        real = engine.generate

        def timed(requests: list[GenerationRequest], admit: base.Admit | None = None) -> list[base.Answer]:
            try:
                return real(requests, admit)
            finally:
                returned.append(time.monotonic())

        engine.generate = timed  # type: ignore[method-assign]
        # The server's deadline is a little later than this: it starts when the request is read.
        deadline = time.monotonic() + settings.request_timeout_s
        response = httpx.post(f"{live.url}/answer", json={"query": "привет"}, timeout=30)
        assert response.status_code == 504
        waited = time.monotonic() + 30
        while not returned and time.monotonic() < waited:
            time.sleep(0.01)
    # Stopped within a fraction of a second of the deadline, not after its whole budget
    # (measured: 0.09 s past it; 1.3-3.3 s before the fix).
    late = returned[0] - deadline
    assert late < 0.5, f"generate returned {late:.2f} s past the deadline ({unbounded_s:.2f} s unbounded)"
