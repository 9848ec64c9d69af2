"""The commands' old module names still run for one release, and say once what replaced them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAMES = [("finetuning.prepare_messages", "finetuning.prepare"), ("finetuning.finetuning", "finetuning.train")]


def help_of(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(("old", "new"), NAMES)
def test_an_old_name_runs_the_new_command_with_one_deprecation_line(old: str, new: str) -> None:
    result = help_of(old)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"usage: python -m {new} " in result.stdout
    assert result.stderr.splitlines() == [
        f"{old} is deprecated and goes in the next release: use python -m {new}"
    ]


@pytest.mark.parametrize("new", [new for _, new in NAMES])
def test_the_new_name_says_nothing_of_deprecation(new: str) -> None:
    result = help_of(new)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"usage: python -m {new} " in result.stdout
    assert "deprecated" not in result.stderr
