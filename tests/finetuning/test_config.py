"""The shipped config parses with the right types, and command-line flags override it."""

from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path

import pytest
from transformers import TrainingArguments

from dialogue.format import CONTEXT_SIZE
from finetuning.arguments import (
    ARGUMENT_CLASSES,
    DEFAULT_CONFIG,
    check_config_types,
    load_config,
    parse_args,
)

CLASSES = (*ARGUMENT_CLASSES, TrainingArguments)


def parsed_value(parsed: tuple[object, ...], key: str) -> object:
    for args in parsed:
        if key in {f.name for f in dataclasses.fields(typing.cast(typing.Any, args))}:
            return getattr(args, key)
    raise KeyError(key)


def test_shipped_config_values_have_the_declared_types_and_reach_the_arguments() -> None:
    config = load_config(DEFAULT_CONFIG)
    check_config_types(config, CLASSES, DEFAULT_CONFIG)  # raises on a tuple or a quoted number
    parsed = parse_args([])
    for key, value in config.items():
        assert not isinstance(value, tuple | list) or key == "report_to", key
        got = parsed_value(parsed, key)
        expected = value if key != "report_to" else [value]
        assert getattr(got, "value", got) == expected, key
    model_args, data_args, training_args = parsed
    assert isinstance(training_args.learning_rate, float) and 0 < training_args.learning_rate < 1e-3
    assert training_args.load_best_model_at_end and training_args.metric_for_best_model == "eval_loss"
    assert training_args.train_sampling_strategy == "group_by_length"
    assert model_args.model_name_or_path == "tinkoff-ai/ruDialoGPT-medium"
    assert data_args.data_dir == "data_output" and data_args.context_size == CONTEXT_SIZE
    assert "context_size" not in config, "one place for it: the dialogue format's default"
    assert "model_name_or_path" not in config, "one place for it: ModelArguments' default"


def test_a_short_run_scales_warmup_and_the_eval_and_save_intervals() -> None:
    # What Trainer makes of the shipped intervals for the README's quick try and for a full run.
    _, _, args = parse_args(["--max_steps", "100"])
    assert args.get_warmup_steps(100) == 2
    assert math.ceil(100 * args.eval_steps) == 10 and math.ceil(100 * args.save_steps) == 10
    assert math.ceil(100 * args.logging_steps) == 1
    assert args.get_warmup_steps(8900) == 178 and math.ceil(8900 * args.eval_steps) == 890


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("learning_rate: [5.0e-5]", "learning_rate"),  # the original's accidental tuple
        ("learning_rate: 5e-5", "learning_rate"),  # YAML reads this as a string
        ("max_steps: '100'", "max_steps"),
        ("train_on_context: 'yes'", "train_on_context"),
        ("lr_scheduler_type: [cosine]", "lr_scheduler_type"),  # a list for an enum crashed the old check
        ("report_to: [1]", "report_to"),
        ("learning_rat: 0.1", "unknown keys"),
        ("max_steps: [100", "not valid YAML"),
        ("hub_token: hf_secret", "HF_TOKEN"),
    ],
)
def test_a_mistyped_config_is_refused_before_training(tmp_path: Path, line: str, reason: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(f"output_dir: {tmp_path / 'out'}\n{line}\n")
    with pytest.raises(SystemExit, match=reason) as refused:
        parse_args(["--config", str(config)])
    assert "hf_secret" not in str(refused.value)


def test_command_line_flags_override_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(
        '{"output_dir": "from-config", "max_steps": 10, "learning_rate": 0.001, "train_on_context": false}'
    )
    _, data_args, training_args = parse_args(
        ["--config", str(config), "--max_steps", "3", "--train_on_context", "true", "--seed", "7"]
    )
    assert training_args.max_steps == 3 and training_args.seed == 7
    assert data_args.train_on_context is True
    assert training_args.learning_rate == 0.001 and training_args.output_dir == "from-config"


def test_the_hub_token_is_never_taken_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="HF_TOKEN") as refused:
        parse_args(["--output_dir", str(tmp_path), "--hub_token", "hf_secret"])
    assert "hf_secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("bf16_capable", "argv", "config", "chosen"),
    [
        (True, [], {}, {"bf16": True}),  # A100 / H100
        (False, [], {}, {"fp16": True}),  # V100, T4
        (True, ["--fp16", "true"], {}, {}),  # explicit flags win
        (True, [], {"bf16": False}, {}),
        (True, ["--precision", "no"], {}, {}),
        (True, [], {"precision": "no"}, {}),
        (True, ["--use-cpu"], {}, {}),
    ],
)
def test_mixed_precision_is_chosen_from_the_gpu_unless_set_explicitly(
    monkeypatch: pytest.MonkeyPatch, bf16_capable: bool, argv: list[str], config: dict, chosen: dict
) -> None:
    import torch

    from finetuning.arguments import auto_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_capable)
    assert auto_precision(argv, config) == chosen


def test_no_mixed_precision_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from finetuning.arguments import auto_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_precision([], {}) == {}


def test_push_to_hub_without_a_token_stops_before_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    # No token saved by an earlier `hf auth login` either.
    monkeypatch.setattr("huggingface_hub.constants.HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(SystemExit, match="HF_TOKEN"):
        parse_args(["--output_dir", str(tmp_path / "out"), "--push_to_hub", "true"])
