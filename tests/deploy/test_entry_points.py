"""The commands people and scripts run: renamed modules keep their old names for a release."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_bot_local_run_forwards_to_bot_local_with_one_deprecation_line() -> None:
    old, new = run_module("bot.local_run", "--help"), run_module("bot.local", "--help")
    assert old.returncode == new.returncode == 0, old.stderr + new.stderr
    assert old.stdout == new.stdout and "python -m bot.local" in new.stdout
    deprecation = [line for line in old.stderr.splitlines() if "deprecated" in line]
    assert deprecation == ["bot.local_run is deprecated: use python -m bot.local (make run)"]
    assert "deprecated" not in new.stderr
