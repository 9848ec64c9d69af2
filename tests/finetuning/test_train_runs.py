"""Runs of python -m finetuning.train: two processes under torchrun, and resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.support.net import free_port
from finetuning.train import main
from tests.finetuning.train_fixtures import small_data_dir, train_args

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_data_dir(tmp_path_factory.mktemp("runs-data"))


def quick(tiny_model_dir: Path, data_dir: Path, out: Path, **overrides: object) -> list[str]:
    flags: dict[str, object] = {
        "max_steps": 4,
        "eval_steps": 2,
        "save_steps": 2,
        "per_device_train_batch_size": 4,
    }
    return train_args(tiny_model_dir, data_dir, out, out.parent / "cache", **{**flags, **overrides})


def run_train_sh(args: list[str], env: dict[str, str], timeout: float = 180) -> str:
    """``bash finetuning/train.sh ARGS`` in its own session, so a hung rendezvous dies with its workers."""
    proc = subprocess.Popen(
        ["bash", str(ROOT / "finetuning" / "train.sh"), *args],
        cwd=ROOT, env=env, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"train.sh did not finish in {timeout} s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    return output


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "GPUS_PER_NODE", "MASTER_"))}
    return {**env, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **extra}


def test_train_sh_under_slurm_runs_two_ddp_workers_that_write_one_model(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    # Stand-ins for Slurm's srun and scontrol: srun logs its options and runs the command once (one node).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text(
        "#!/usr/bin/env bash\n"
        'echo "$@" > "$SRUN_LOG"\n'
        'while [[ "$1" == --* ]]; do shift; done\n'
        'SLURM_NODEID=0 exec "$@"\n'
    )
    (bin_dir / "scontrol").write_text("#!/usr/bin/env bash\necho 127.0.0.1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    port = free_port()
    env = clean_env(
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        SRUN_LOG=str(tmp_path / "srun.log"),
        SLURM_JOB_ID="4242",
        SLURM_JOB_NODELIST="gpu-node-[01]",
        SLURM_JOB_NUM_NODES="1",
        SLURM_CPUS_PER_TASK="2",
        SLURM_SUBMIT_DIR=str(ROOT),
        GPUS_PER_NODE="2",
        MASTER_PORT=str(port),
    )
    out = tmp_path / "out"
    output = run_train_sh(quick(tiny_model_dir, data_dir, out, ddp_backend="gloo"), env)

    srun = (tmp_path / "srun.log").read_text()
    assert srun.startswith("--nodes=1 --ntasks-per-node=1")
    assert f"1 node(s) x 2 worker(s), rendezvous at 127.0.0.1:{port}" in output
    assert "world size 2" in output
    # 54 training rows split over 2 ranks = 27 each, 7 batches of 4 per rank: 4 steps are 4/7 of an epoch
    # (one process alone would need 14 batches per epoch).
    train = json.loads((out / "train_results.json").read_text())
    assert train["epoch"] == pytest.approx(4 / 7, abs=0.01)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]


def test_train_sh_runs_without_slurm_on_one_machine(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    output = run_train_sh(quick(tiny_model_dir, data_dir, out, max_steps=2), clean_env())
    assert "no Slurm: 1 worker(s)" in output and "world size 1" in output
    assert (out / "model.safetensors").is_file() and (out / "generation_config.json").is_file()


def test_training_resumes_from_the_last_checkpoint(
    tiny_model_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    main(quick(tiny_model_dir, data_dir, out))
    # Mark the checkpoint's state: only a run that really resumes from it carries the mark on.
    state_file = out / "checkpoint-4" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["log_history"].append({"step": 4, "resumed_from": "checkpoint-4"})
    state_file.write_text(json.dumps(state))

    main(quick(tiny_model_dir, data_dir, out, max_steps=6, resume_from_checkpoint="last"))
    final = json.loads((out / "trainer_state.json").read_text())
    assert final["global_step"] == 6
    history = final["log_history"]
    mark = history.index({"step": 4, "resumed_from": "checkpoint-4"})
    # Everything after the mark was logged by the resumed run: it went on from step 4, not from 0.
    assert [e["step"] for e in history[:mark] if "eval_loss" in e] == [0, 2, 4]
    assert min(e["step"] for e in history[mark + 1 :]) >= 4
    assert any(e["step"] == 6 and "eval_loss" in e for e in history[mark + 1 :])
