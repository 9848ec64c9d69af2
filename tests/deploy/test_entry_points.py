"""The commands people and scripts run: --help at once, one line for a bad setting, old names forward."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every entry point, the old names included. --help imports no torch, transformers,
# CTranslate2 or aiogram (each takes seconds) and loads no model.
ENTRY_POINTS = [
    "model_server",
    "model_server.convert",
    "bot",
    "bot.local",
    "bot.local_run",
    "finetuning.prepare",
    "finetuning.prepare_messages",
    "finetuning.train",
    "finetuning.finetuning",
    "finetuning.evaluate",
]
# Measured on the 2-core machine shared with other test runs: 0.2-0.8 s each
# (Python itself starts in ~0.1 s); before, the model server started and loaded its model.
HELP_LIMIT_S = 2.0
SECRET = "hunter2secret"


def run_module(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_answers_at_once_without_starting_anything(module: str, tmp_path: Path) -> None:
    # A model server would bind this port; a run that starts one fails the test.
    started = time.perf_counter()
    result = run_module(module, "--help", cwd=tmp_path, MODEL_NAME_OR_PATH=str(tmp_path / "no-model"))
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m ")
    assert elapsed < HELP_LIMIT_S, f"{module} --help took {elapsed:.2f} s"


def test_the_services_help_describes_their_environment() -> None:
    server, bot = run_module("model_server", "--help").stdout, run_module("bot", "--help").stdout
    assert "MODEL_NAME_OR_PATH" in server and "GEN_<FIELD>" in server and "PORT" in server
    assert "BOT_TOKEN" in bot and "DATABASE_URL" in bot and "MODEL_SERVER_URL" in bot


@pytest.mark.parametrize(
    ("module", "variable"),
    [("bot", "DB_PORT"), ("bot.local", "DB_PORT"), ("bot.local", "PORT"), ("model_server", "PORT")],
)
def test_an_invalid_setting_is_one_line_naming_it_without_its_value(
    module: str, variable: str, tmp_path: Path
) -> None:
    result = run_module(module, cwd=tmp_path, **{variable: SECRET})
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{module}: invalid settings: {variable}: ")
    assert SECRET not in result.stdout + result.stderr


def test_bot_local_run_forwards_to_bot_local_with_one_deprecation_line() -> None:
    old, new = run_module("bot.local_run", "--help"), run_module("bot.local", "--help")
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert old.stdout == new.stdout and "python -m bot.local" in new.stdout
    deprecation = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert deprecation == ["bot.local_run is deprecated: use python -m bot.local (make run)"]
    assert "deprecated" not in new.stderr
