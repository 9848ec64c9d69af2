"""Mistakes a user makes with training and evaluation: one line on stderr, no traceback, in seconds.

Run as a user runs them, ``python -m finetuning.train`` / ``python -m finetuning.evaluate``
in their own process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.support.net import free_port
from tests.finetuning.train_fixtures import small_data_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data_dir(tmp_path_factory.mktemp("user-errors-data"), n_rows=20)


def run(module: str, *args: str, **env: str) -> tuple[str, float]:
    """The command's only stderr line (asserted), after exit status 2; and how long it took."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={"HF_HUB_OFFLINE": "1", **base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0], elapsed


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--learning_rat", "0.1"], "finetuning: unknown flag --learning_rat (flags are never abbreviated"),
        (["--max_steps", "ten"], "finetuning: argument --max_steps/--max-steps: invalid int value: 'ten'"),
        (["--data_dir", "no-such-dir"], "finetuning: no-such-dir: data directory does not exist"),
        (["--data_file", "no-such.csv"], "finetuning: no-such.csv: data file does not exist"),
        (["--model_name_or_path", "./outputs/tiny-rn"], "=./outputs/tiny-rn: directory does not exist"),
        (["--model_name_or_path", "org/not-cached"], "HF_HUB_OFFLINE=1 and the model is not in the local"),
    ],
)  # fmt: skip
def test_training_refuses_a_mistake_in_one_line(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path, flags: list[str], expected: str
) -> None:
    defaults = ["--model_name_or_path", str(tiny_model_dir), "--data_dir", str(data_dir)]
    line, _ = run("finetuning.train", *defaults, "--output_dir", str(tmp_path / "out"), *flags)
    assert expected in line
    assert not (tmp_path / "out").exists(), "nothing written"


def test_a_broken_config_file_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("max_steps: [100\n")
    line, _ = run("finetuning.train", "--config", str(config))
    assert line.startswith(f"finetuning: {config}: not valid YAML: ")


def test_training_stops_in_seconds_when_the_hub_is_unreachable(data_dir: Path, tmp_path: Path) -> None:
    # A typo in a local path is a valid-looking hub id: online, the hub is asked, and nothing answers.
    line, elapsed = run(
        "finetuning.train",
        *("--model_name_or_path", "outputs/tiny-rn", "--data_dir", str(data_dir)),
        *("--output_dir", str(tmp_path / "out")),
        HF_HUB_OFFLINE="0",
        HF_HOME=str(tmp_path / "hf"),
        HF_ENDPOINT=f"http://127.0.0.1:{free_port()}",
    )
    assert line.startswith("finetuning: --model_name_or_path=outputs/tiny-rn: no such local directory")
    assert "hub cannot be reached" in line and "set --model_name_or_path to a local model directory" in line
    assert elapsed < 40, "imports only: no minute of retries"


def test_an_existing_model_in_the_output_dir_is_not_overwritten(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"an earlier run's weights")
    line, _ = run(
        "finetuning.train",
        *("--model_name_or_path", str(tiny_model_dir), "--data_dir", str(data_dir), "--output_dir", str(out)),
    )
    assert f"--output_dir {out} already holds a model; pass --overwrite_output_dir" in line
    assert (out / "model.safetensors").read_bytes() == b"an earlier run's weights"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], "evaluate: the following arguments are required: --model_name_or_path"),
        (["--model_name_or_path", "./outputs/tiny-rn"], "=./outputs/tiny-rn: directory does not exist"),
        (["--model_name_or_path", "{model}"], "carries no validation rows (_validation_rows.csv"),
        (["--model_name_or_path", "{model}", "--data_dir", "nodir"], "evaluate: nodir: data directory"),
        (["--model_name_or_path", "{model}", "--max_sample", "3"], "evaluate: unknown flag --max_sample"),
    ],
)  # fmt: skip
def test_evaluate_refuses_a_mistake_in_one_line(
    tiny_model_dir: Path, flags: list[str], expected: str
) -> None:
    line, _ = run("finetuning.evaluate", *(f.format(model=tiny_model_dir) for f in flags))
    assert expected in line
