from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.support.net import free_port
from tests.deploy.support import (
    CPU_STACK,
    ENV_EXAMPLE,
    FILLED_IN,
    GPU_STACK,
    GREEDY,
    READY_TIMEOUT_S,
    ROOT,
    compose_config,
    healthy,
    service_settings,
    settings_env,
)


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    """The GPU stack as Compose resolves it for a user who filled in .env.example's secrets."""
    return compose_config(GPU_STACK, FILLED_IN, ENV_EXAMPLE)


@pytest.fixture(scope="session")
def compose_cpu() -> dict[str, Any]:
    """The same with the CPU override, merged by Compose."""
    return compose_config(CPU_STACK, FILLED_IN, ENV_EXAMPLE)


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


@pytest.fixture(scope="session")
def run_env(tiny_model_dir: Path) -> dict[str, str]:
    """A person trying the tiny model with greedy decoding; none of the caller's settings leak in."""
    names = {name for cls in service_settings().values() for name in settings_env(cls).names}
    env = {k: v for k, v in os.environ.items() if k.upper() not in names and not k.upper().startswith("GEN_")}
    return {
        **env,
        **GREEDY,
        "MODEL_NAME_OR_PATH": str(tiny_model_dir),
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="session")
def reference_server(run_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A model server of the tests' own, asked directly for the answers the product must give."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("reference") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "model_server"],
            env={**run_env, "HOST": "127.0.0.1", "PORT": str(port)},
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not healthy(url):
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "reference model server did not start"
                time.sleep(0.3)
            yield url
        finally:
            server.terminate()
            server.wait(30)
