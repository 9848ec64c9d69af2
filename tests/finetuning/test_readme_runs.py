"""README section 2, step by step: the quick try, then the full run, then evaluate and serve its model."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from finetuning.arguments import run_command
from finetuning.train import main
from tests.finetuning.train_fixtures import small_data_dir

ROOT = Path(__file__).resolve().parents[2]
# What this machine needs on top of README's commands: the tiny model, CPU, small batches.
HERE = {
    "data_dir": None,  # filled in by the test
    "model_name_or_path": None,
    "dataset_cache_dir": None,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "max_length": 64,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": False,
    "use_cpu": True,
    "disable_tqdm": True,
    "report_to": "none",
}


def readme_training_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## 2. Train your own model", 1)[1].split("\n## ", 1)[0]


def train_commands(section: str) -> list[list[str]]:
    """The ARGS of each ``make train`` line, in order; the quick try's step count made minimal."""
    commands = []
    for line in re.findall(r"^\s*make train\b(.*)$", section, re.MULTILINE):
        match = re.match(r"\s*ARGS='([^']*)'", line)
        args = shlex.split(match.group(1)) if match else []
        minimal = ["2" if prev == "--max_steps" else a for prev, a in zip(["", *args], args, strict=False)]
        commands.append(minimal)
    return commands


def test_the_quick_try_then_the_full_run_as_the_readme_says(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = readme_training_section()
    commands = train_commands(section)
    assert len(commands) == 2 and "--max_steps" in commands[0] and commands[1] == []
    here = {
        **HERE,
        "data_dir": small_data_dir(tmp_path / "data", n_rows=20),
        "model_name_or_path": tiny_model_dir,
        "dataset_cache_dir": tmp_path / "cache",
    }
    flags = [item for name, value in here.items() for item in (f"--{name}", str(value))]
    monkeypatch.chdir(tmp_path)  # the config's output_dir is relative: outputs/… lands here

    for args in commands:
        assert run_command("finetuning", main, [*args, *flags]) == 0, args

    # Evaluate and serve name the full run's model; the try is beside it, and both are complete.
    (evaluated,) = re.findall(r"make evaluate ARGS='--model_name_or_path (\S+)'", section)
    (served,) = re.findall(r"MODEL_NAME_OR_PATH=(\S+) make run", section)
    assert evaluated == served
    full, quick = tmp_path / served, tmp_path / f"{served}-try"
    assert f"{served}-try" in section
    for model in (full, quick):
        assert (model / "config.json").is_file() and (model / "dialogue.json").is_file()
    assert full.stat().st_mtime > quick.stat().st_mtime  # the full run wrote last, to its own place
