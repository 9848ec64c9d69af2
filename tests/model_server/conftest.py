from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from benchmarks.support.net import free_port
from dialogue.format import TAG_PREFIX, Turn, normalize, serving_prompt
from model_server.main import create_app
from model_server.service import ModelService
from model_server.settings import GenerationSettings, Settings

ENGINES = ["transformers", "ctranslate2"]


def greedy(**overrides: Any) -> GenerationSettings:
    """Deterministic generation, so answers can be compared."""
    return GenerationSettings(do_sample=False, num_beams=1, **overrides)


def build_serving_model(out_dir: Path, *, seed: int = 10, extra_rows: int = 32) -> Path:
    """A tiny random GPT-2 whose greedy answers to the tests' queries are not empty.

    Its embedding has more rows than the tokenizer has tokens, as padded
    checkpoints do (CTranslate2's converter must cope). Seed 10 was picked
    because its answers are non-empty and contain control characters and
    broken bytes, which the server must clean away.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from benchmarks.support.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    config = GPT2Config(
        vocab_size=len(tokenizer) + extra_rows, n_positions=256, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def printable(text: str) -> str:
    """What the server sends of a decoded answer: cut at the speaker tag, no control characters
    (some of them, like \x1f, count as whitespace), no broken bytes, one line."""
    return normalize(re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]", "", text.split(TAG_PREFIX, 1)[0]))


def greedy_reference(model_dir: Path) -> Callable[..., str]:
    """What greedy decoding of the bare model in ``model_dir`` answers, computed without the server.

    Step by step, with the served defaults' penalties over the answer's own
    tokens: repetition penalty 1.2 and no repeated pair of tokens.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()

    def answer(context: list[Turn], query: str, prompt: str | None = None) -> str:
        prompt = serving_prompt(context, query) if prompt is None else prompt
        new: list[int] = []
        with torch.inference_mode():
            step = model(torch.tensor([tokenizer(prompt)["input_ids"]]), use_cache=True)
            while len(new) < 40:
                logits = step.logits[0, -1]
                for token in set(new):
                    logits[token] = logits[token] * 1.2 if logits[token] < 0 else logits[token] / 1.2
                for before, after in zip(new, new[1:], strict=False):
                    if before == new[-1]:
                        logits[after] = -torch.inf
                token = int(logits.argmax())
                if token == tokenizer.eos_token_id:
                    break
                new.append(token)
                step = model(torch.tensor([[token]]), cache=step.past_key_values, use_cache=True)
        return printable(tokenizer.decode(new, skip_special_tokens=True))

    return answer


@pytest.fixture(scope="session")
def serving_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_serving_model(tmp_path_factory.mktemp("serving-model"))


@pytest.fixture(scope="session", autouse=True)
def conversion_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """CTranslate2 conversions of the test models go to a temporary HF_HOME."""
    root = tmp_path_factory.mktemp("hf-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HOME", str(root))
        yield root / "ctranslate2"


@dataclass
class LiveServer:
    url: str
    app: FastAPI

    @property
    def service(self) -> ModelService:
        service: ModelService = self.app.state.service
        return service


@contextmanager
def serve(settings: Settings, wait_ready: bool = True) -> Iterator[LiveServer]:
    """The real app under uvicorn on a loopback port, in a thread of this process."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/health", timeout=5).status_code
        except httpx.TransportError:
            status = None
        if status == 200 or (status is not None and not wait_ready):
            break
        if status == 503 and app.state.service.load_error:
            break
        time.sleep(0.05)
    else:
        raise TimeoutError("model server did not start")
    try:
        yield LiveServer(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def server_settings(serving_model_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {"model_name_or_path": str(serving_model_dir), "generation": greedy()}
        fields.update(overrides)
        return Settings(**fields)

    return make


@pytest.fixture(scope="module", params=ENGINES)
def shared_server(request: pytest.FixtureRequest, serving_model_dir: Path) -> Iterator[LiveServer]:
    """One greedy server per engine for the tests that only read from it."""
    settings = Settings(
        model_name_or_path=str(serving_model_dir),
        engine=request.param,
        engine_compute_type="float32",
        generation=greedy(),
    )
    with serve(settings) as live:
        yield live
