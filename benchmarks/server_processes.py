"""The real ``python -m model_server`` as a child process, for benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.support.net import free_port

ROOT = Path(__file__).resolve().parent.parent


def rss_mib(pid: int) -> float:
    """Peak resident memory of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


class ModelServer:
    """Started at construction, answering once ``/health`` says so.

    ``tree``: the checkout whose ``model_server`` runs (another one's, to compare
    against it), in this interpreter's environment.
    """

    def __init__(
        self,
        model_dir: Path,
        engine: str,
        compute: str,
        env: dict[str, str],
        batch: int,
        tree: Path = ROOT,
    ) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        settings = {
            "MODEL_NAME_OR_PATH": str(model_dir), "ENGINE": engine, "ENGINE_COMPUTE_TYPE": compute,
            "PORT": str(port), "HOST": "127.0.0.1", "MAX_BATCH_SIZE": str(batch), "LOG_LEVEL": "warning",
            "REQUEST_TIMEOUT_S": "900",
        }  # fmt: skip
        clean = {k: v for k, v in os.environ.items() if not k.startswith("GEN_")}
        # The tree's own packages, not those this tree put on PYTHONPATH or installed editable.
        clean["PYTHONPATH"] = str(tree)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "model_server"], env=clean | env | settings, cwd=tree
        )
        self.pid = self._process.pid
        deadline = time.monotonic() + 900
        while not self._healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"model server ({engine}) did not start")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(60)
