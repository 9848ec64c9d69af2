from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import torch

from dialogue.model_facts import DialogueFacts
from model_server.convert import conversion_dir
from model_server.engines.ctranslate2 import resolve_compute_type
from model_server.engines.transformers import TransformersEngine, pick_device, pick_dtype
from model_server.loading import load_engine, pick_engine
from model_server.settings import Settings
from tests.model_server.conftest import build_serving_model, greedy, serve


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GEN_* or server variables from the caller; the working directory has no .env."""
    for name in list(os.environ):
        if name.startswith("GEN_") or name in {"ENGINE", "ENGINE_COMPUTE_TYPE", "CONTEXT_SIZE"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults_are_the_model_card_generation_settings(clean_env: Path) -> None:
    kwargs = Settings().generation.generation_kwargs()
    assert kwargs | {"stop_strings": None} == kwargs | {
        "top_k": 10,
        "top_p": 0.95,
        "num_beams": 3,
        "do_sample": True,
        "no_repeat_ngram_size": 2,
        "temperature": 1.2,
        "repetition_penalty": 1.2,
        "length_penalty": 1.0,
        "max_new_tokens": 40,
        "num_return_sequences": 1,
        "stop_strings": None,
    }
    assert Settings().model_name_or_path == "taranetsdan/ruDialoGPT_v2_medium"


def test_gen_variables_reach_the_generation_config(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, serving_model_dir: Path
) -> None:
    monkeypatch.setenv("MODEL_NAME_OR_PATH", str(serving_model_dir))
    monkeypatch.setenv("ENGINE", "transformers")
    monkeypatch.setenv("GEN_DO_SAMPLE", "false")
    monkeypatch.setenv("GEN_NUM_BEAMS", "1")
    monkeypatch.setenv("GEN_MAX_NEW_TOKENS", "7")
    monkeypatch.setenv("GEN_NO_REPEAT_NGRAM_SIZE", "0")
    monkeypatch.setenv("GEN_MIN_NEW_TOKENS", "2")
    monkeypatch.setenv("GEN_ENCODER_REPETITION_PENALTY", "1.1")  # not declared: mapped generically
    engine = load_engine(Settings())
    assert isinstance(engine, TransformersEngine)
    config = engine.generation_config
    assert (config.do_sample, config.num_beams, config.max_new_tokens) == (False, 1, 7)
    assert (config.no_repeat_ngram_size, config.min_new_tokens) == (0, 2)
    assert config.encoder_repetition_penalty == 1.1
    assert config.pad_token_id == engine.tokenizer.eos_token_id  # the model ships no pad token


def test_every_setting_is_read_from_dot_env_and_the_environment_wins(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, serving_model_dir: Path
) -> None:
    (clean_env / ".env").write_text(
        f"MODEL_NAME_OR_PATH={serving_model_dir}\nENGINE=transformers\nGEN_DO_SAMPLE=false\n"
        "GEN_NUM_BEAMS=1\nGEN_MAX_NEW_TOKENS=9\nGEN_TOP_K=3\nGEN_TYPICAL_P=0.5\nMAX_BODY_BYTES=1234\n"
    )
    monkeypatch.setenv("GEN_MAX_NEW_TOKENS", "5")
    settings = Settings()
    assert (settings.engine, settings.max_body_bytes) == ("transformers", 1234)
    assert settings.generation.other == {"typical_p": 0.5}  # an undeclared field, from .env too
    engine = load_engine(settings)
    assert isinstance(engine, TransformersEngine)
    config = engine.generation_config
    assert (config.do_sample, config.num_beams, config.max_new_tokens) == (False, 1, 5)
    assert config.typical_p == 0.5


def test_the_engine_follows_the_hardware() -> None:
    assert pick_engine("auto", torch.device("cpu")) == "ctranslate2"
    assert pick_engine("auto", torch.device("cuda")) == "transformers"
    assert pick_engine("transformers", torch.device("cpu")) == "transformers"


def test_device_and_dtype_follow_the_hardware(serving_model_dir: Path) -> None:
    assert pick_device("auto", cuda_available=True).type == "cuda"
    assert pick_device("auto", cuda_available=False).type == "cpu"
    assert pick_dtype("auto", torch.device("cuda"), bf16_supported=True) == "bfloat16"
    assert pick_dtype("auto", torch.device("cuda"), bf16_supported=False) == "float16"
    assert pick_dtype("auto", torch.device("cpu")) == "float32"
    settings = Settings(model_name_or_path=str(serving_model_dir), engine="transformers")
    engine = load_engine(settings)
    assert isinstance(engine, TransformersEngine)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.device_.type == expected
    parameter = next(engine.model.parameters())
    assert parameter.device.type == expected
    assert str(parameter.dtype) == f"torch.{pick_dtype('auto', engine.device_)}"
    half = load_engine(settings.model_copy(update={"engine_compute_type": "bfloat16"}))
    assert isinstance(half, TransformersEngine)
    assert str(next(half.model.parameters()).dtype) == "torch.bfloat16"


@pytest.fixture
def trained_dir(tmp_path: Path) -> Path:
    """A model directory as training leaves it: dialogue.json and generation_config.json."""
    model = build_serving_model(tmp_path / "trained")
    DialogueFacts(context_size=2).save(model)
    generation = {"do_sample": False, "num_beams": 1, "max_new_tokens": 12, "repetition_penalty": 1.1}
    (model / "generation_config.json").write_text(json.dumps(generation))
    return model


def test_the_model_directory_sets_context_size_and_generation_defaults(
    clean_env: Path, trained_dir: Path
) -> None:
    from tests.model_server.test_api import recorded_prompts

    settings = Settings(model_name_or_path=str(trained_dir), engine="transformers")
    with serve(settings) as live, recorded_prompts(live) as prompts:
        health = httpx.get(f"{live.url}/health").json()
        context = [{"role": "user", "text": "раз"}, {"role": "bot", "text": "два"}]
        response = httpx.post(f"{live.url}/answer", json={"query": "три", "context": context}, timeout=30)
        engine = live.service.engine
    assert response.status_code == 200
    assert health["context_size"] == 2
    # Two messages before the answer: the trained context size, not the format's 3.
    assert prompts == ["@@ВТОРОЙ@@ два @@ПЕРВЫЙ@@ три @@ВТОРОЙ@@"]
    assert isinstance(engine, TransformersEngine)
    config = engine.generation_config
    assert (config.do_sample, config.num_beams, config.max_new_tokens, config.repetition_penalty) == (
        False,
        1,
        12,
        1.1,
    )


def test_the_environment_overrides_the_trained_values_with_a_warning(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, trained_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("CONTEXT_SIZE", "3")
    monkeypatch.setenv("GEN_MAX_NEW_TOKENS", "20")
    caplog.set_level(logging.WARNING, logger="model_server")
    engine = load_engine(Settings(model_name_or_path=str(trained_dir), engine="transformers"))
    assert (engine.context_size, engine.max_new_tokens) == (3, 20)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("CONTEXT_SIZE=3" in w and "trained with" in w and "2" in w for w in warnings), warnings
    assert any("GEN_MAX_NEW_TOKENS=20" in w and "max_new_tokens=12" in w for w in warnings), warnings


def test_a_base_model_without_dialogue_facts_gets_the_format_defaults(
    clean_env: Path, serving_model_dir: Path
) -> None:
    engine = load_engine(
        Settings(model_name_or_path=str(serving_model_dir), engine="transformers", generation=greedy())
    )
    assert engine.context_size == 3


def _convert(*args: str) -> Path:
    command = [sys.executable, "-m", "model_server.convert", "--compute-type", "auto", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1])


def test_convert_auto_prepares_what_the_servers_auto_looks_for(
    tmp_path: Path, conversion_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # HF_HOME (conversion_cache) reaches the command through the environment, as in the image.
    model = build_serving_model(tmp_path / "ahead")
    ahead = _convert("--model", str(model))
    assert ahead.parent == conversion_cache
    caplog.set_level(logging.INFO, logger="model_server")
    settings = Settings(model_name_or_path=str(model), engine="ctranslate2", generation=greedy())
    engine = load_engine(settings)
    assert ahead.name.endswith(f"--{engine.compute_type}")
    assert any("reused" in r.getMessage() and str(ahead) in r.getMessage() for r in caplog.records)
    assert not any("converted" in r.getMessage() for r in caplog.records)
    # On CUDA the server asks the same function for the compute type of its device.
    on_cuda = _convert("--model", str(model), "--device", "cuda")
    assert on_cuda == conversion_dir(str(model), resolve_compute_type("auto", "cuda"))
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    assert on_cuda.name.endswith("--bfloat16" if bf16 else "--float16") and (on_cuda / "model.bin").is_file()
