"""The Makefile: which torch build a new venv gets, and Ctrl-C ending ``make run`` quietly.

The install recipes are read in make's dry form (``make -n`` with an empty
VENV); ``make run`` runs for real against a venv whose python is this one.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.deploy.support import READY_TIMEOUT_S, ROOT, make_env

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def path_without_nvidia_smi() -> str:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not (Path(f) / "nvidia-smi").exists())


def make_dry(target: str, path: str, venv: Path, *variables: str) -> list[str]:
    result = subprocess.run(
        ["make", "-n", target, f"VENV={venv}", *variables],
        cwd=ROOT,
        env={**make_env(), "PATH": path},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if "pip install" in line]


@pytest.mark.parametrize("target", ["run", "train"])
def test_without_a_gpu_torch_comes_alone_from_the_cpu_index(target: str, tmp_path: Path) -> None:
    installs = make_dry(target, path_without_nvidia_smi(), tmp_path / "venv")
    [torch] = [line for line in installs if CPU_INDEX in line]
    assert torch.endswith(" torch") and "--no-deps" in torch, "only torch may ask the extra index"
    assert "-c constraints-cpu.txt" in torch, "the pinned version"
    assert any(
        line.endswith("-e '.[server,bot]'" if target == "run" else "-e '.[train]'") for line in installs
    )


def test_with_a_gpu_or_pip_args_torch_comes_from_where_pip_looks(tmp_path: Path) -> None:
    gpu_bin = tmp_path / "gpu-bin"
    gpu_bin.mkdir()
    # Stands for the driver's tool: the Makefile only asks whether it is installed.
    (gpu_bin / "nvidia-smi").write_text("#!/bin/sh\n")
    (gpu_bin / "nvidia-smi").chmod(0o755)
    with_gpu = make_dry("run", f"{gpu_bin}{os.pathsep}{path_without_nvidia_smi()}", tmp_path / "venv")
    assert not [line for line in with_gpu if CPU_INDEX in line or line.endswith(" torch")]

    chosen = make_dry(
        "run", path_without_nvidia_smi(), tmp_path / "venv", "PIP_ARGS=--index-url http://mirror/simple"
    )
    assert not [line for line in chosen if CPU_INDEX in line]
    assert any("--index-url http://mirror/simple" in line for line in chosen)


def test_ctrl_c_ends_make_run_without_an_error_and_stops_the_chat(
    run_env: dict[str, str], reference_server: str, tmp_path: Path
) -> None:
    # A venv that is already set up (its stamp is newer than pyproject.toml) and runs this python.
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".installed-server,bot").touch()
    make = shutil.which("make")
    assert make
    process = subprocess.Popen(
        [make, "run", f"VENV={venv}", f"DATABASE_URL=sqlite:///{tmp_path / 'chat.sqlite3'}"],
        cwd=ROOT,
        env={**make_env(run_env), "MODEL_SERVER_URL": reference_server},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        assert process.stdout is not None
        seen = []
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any("terminal" in line for line in seen):
            assert time.monotonic() < deadline and process.poll() is None, "".join(seen)
            seen.append(process.stdout.readline())
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = "".join(seen) + rest
    assert "make: ***" not in output, output  # make's "[Makefile:N: run] Error 130"
    assert process.returncode == -signal.SIGINT, "make ends as an interrupted command does"
