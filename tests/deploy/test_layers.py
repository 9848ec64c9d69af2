"""The layer rules of pyproject's [tool.importlinter] hold, and an import across a layer breaks them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "model_server", "dialogue", "finetuning")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # From the tree's own folder, so that its copies of the packages are the ones analysed.
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", "pyproject.toml", "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tree)},
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_hold(tree: Path) -> None:
    result = lint_imports(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("bot/core/conversation.py", "import bot.telegram.sending", "bot layers"),
        ("bot/storage/db.py", "import bot.core.texts", "bot layers"),
        ("bot/core/commands.py", "import bot.intake.serve", "bot layers"),
        ("bot/telegram/filters.py", "import bot.local.terminal_chat", "bot layers"),
        ("dialogue/format.py", "import model_server.settings", "the dialogue format imports nothing"),
        ("model_server/settings.py", "import bot.settings", "bot and model_server are separate"),
    ],
)
def test_an_import_across_a_layer_breaks_a_contract(
    tree: Path, module: str, bad_import: str, contract: str
) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{bad_import}  # across a layer\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    broken = " ".join(result.stdout.partition("Broken contracts")[2].split())
    assert contract in broken, result.stdout
    # The report names the import that broke it.
    assert bad_import.split()[1] in broken
