from __future__ import annotations

from pathlib import Path

import pytest

from model_server.generator import load_generator
from model_server.settings import Settings


def test_defaults_are_the_model_card_generation_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(__import__("os").environ):
        if name.startswith("GEN_"):
            monkeypatch.delenv(name)
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
    monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path
) -> None:
    monkeypatch.setenv("MODEL_NAME_OR_PATH", str(tiny_model_dir))
    monkeypatch.setenv("GEN_DO_SAMPLE", "false")
    monkeypatch.setenv("GEN_NUM_BEAMS", "1")
    monkeypatch.setenv("GEN_MAX_NEW_TOKENS", "7")
    monkeypatch.setenv("GEN_NO_REPEAT_NGRAM_SIZE", "0")
    monkeypatch.setenv("GEN_MIN_NEW_TOKENS", "2")
    monkeypatch.setenv("GEN_ENCODER_REPETITION_PENALTY", "1.1")  # not declared: mapped generically
    generator = load_generator(Settings())
    config = generator.generation_config
    assert (config.do_sample, config.num_beams, config.max_new_tokens) == (False, 1, 7)
    assert (config.no_repeat_ngram_size, config.min_new_tokens) == (0, 2)
    assert config.encoder_repetition_penalty == 1.1
    assert config.pad_token_id == generator.tokenizer.eos_token_id  # the model ships no pad token
    assert config.stop_strings == ["@@"]


def test_device_and_dtype_follow_the_hardware(tiny_model_dir: Path) -> None:
    generator = load_generator(Settings(model_name_or_path=str(tiny_model_dir)))
    assert generator.device.type == "cpu"
    assert next(generator.model.parameters()).dtype.is_floating_point
    assert str(next(generator.model.parameters()).dtype) == "torch.float32"
    half = load_generator(Settings(model_name_or_path=str(tiny_model_dir), dtype="bfloat16"))
    assert str(next(half.model.parameters()).dtype) == "torch.bfloat16"
