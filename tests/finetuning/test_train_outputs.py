"""What a run with the shipped config leaves in its output directory, and re-running into it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogue.model_facts import FACTS_FILE, DialogueFacts, read_local_facts
from finetuning.train import main
from tests.finetuning.train_fixtures import small_data_dir


def shipped_config_run(model: Path, data: Path, out: Path, *flags: str) -> list[str]:
    """finetuning/config.yaml as it ships, only made to fit a CPU and a tiny model."""
    return [
        *("--model_name_or_path", str(model), "--data_dir", str(data), "--output_dir", str(out)),
        *("--dataset_cache_dir", str(out.parent / "cache"), "--use_cpu", "true", "--report_to", "none"),
        *("--per_device_train_batch_size", "4", "--dataloader_num_workers", "0", "--disable_tqdm", "true"),
        *flags,
    ]


def test_a_short_run_with_the_shipped_config_validates_throughout_and_carries_its_facts(
    tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = small_data_dir(tmp_path / "data")
    out = tmp_path / "out"
    # A 20-step try; max_length far beyond the tiny model's 256 positions.
    main(shipped_config_run(tiny_model_dir, data, out, "--max_steps", "20", "--context_size", "2",
                            "--max_length", "100000"))  # fmt: skip
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    # Validation every tenth of the run, not every 500 steps (never, in 20).
    assert [e["step"] for e in history if "eval_loss" in e] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
    # Training loss every step; warmup is 2 % of the run, 1 step (not 200): then the peak, then decay.
    rates = [e["learning_rate"] for e in history if "learning_rate" in e]
    assert len(rates) == 20 and rates[0] == 0
    assert rates[1] == pytest.approx(5e-5, rel=0.02) and rates[1] > rates[10] > rates[-1]
    assert "max_length 100000 is more than the model's 256 positions: using 256" in caplog.text
    # The context size the samples were built with, beside generation_config.json for the server.
    assert (out / "generation_config.json").is_file() and (out / FACTS_FILE).is_file()
    assert read_local_facts(out) == DialogueFacts(context_size=2)


def test_re_running_into_a_trained_model_needs_overwrite_and_then_starts_clean(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = small_data_dir(tmp_path / "data")
    out = tmp_path / "out"
    main(shipped_config_run(tiny_model_dir, data, out, "--max_steps", "20", "--eval_steps", "10",
                            "--save_steps", "10"))  # fmt: skip
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    with pytest.raises(SystemExit, match="already holds a model; pass --overwrite_output_dir"):
        main(shipped_config_run(tiny_model_dir, data, out, "--max_steps", "3"))
    main(shipped_config_run(tiny_model_dir, data, out, "--max_steps", "3", "--overwrite_output_dir"))
    # Only the new run's checkpoints: "resume ... last" can no longer pick the old run's step 20.
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-3"]
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 3
