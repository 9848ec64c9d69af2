"""Starting the real ``python -m model_server`` and ``python -m bot`` processes for end-to-end runs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def start_module(
    module: str, env: dict[str, str], log_path: Path, tree: Path = REPO
) -> subprocess.Popen[bytes]:
    """``python -m module`` from ``tree`` (its own packages come first on sys.path)."""
    log = open(log_path, "ab")  # the child writes to it until it ends
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=tree,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGINT (graceful, as Ctrl-C or `docker stop` with STOPSIGNAL), then kill."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def model_server_env(model_dir: Path, port: int) -> dict[str, str]:
    return {
        "MODEL_NAME_OR_PATH": str(model_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "GEN_DO_SAMPLE": "false",
        "GEN_NUM_BEAMS": "1",
        "GEN_MAX_NEW_TOKENS": "12",
        "LOG_LEVEL": "warning",
        "OMP_NUM_THREADS": "1",
    }


async def wait_healthy(
    url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"model server exited {process.returncode}: {log_path.read_text()[-2000:]}"
                )
            try:
                if (await client.get(f"{url}/health", timeout=2)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise TimeoutError(f"model server not healthy after {timeout} s: {log_path.read_text()[-2000:]}")
