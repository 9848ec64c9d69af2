from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.support import (
    COMPOSE,
    COMPOSE_CPU,
    GREEDY,
    READY_TIMEOUT_S,
    ROOT,
    healthy,
    load_compose,
    merge,
    settings_env,
)
from tests.support.net import free_port


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE)


@pytest.fixture(scope="session")
def compose_cpu(compose: dict[str, Any]) -> dict[str, Any]:
    """The stack with the CPU override applied, merged the way Compose merges files."""
    return merge(compose, load_compose(COMPOSE_CPU))


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="session")
def run_env(tiny_model_dir: Path) -> dict[str, str]:
    """A person trying the tiny model with greedy decoding; none of the caller's settings leak in."""
    from bot.settings import Settings as BotSettings
    from model_server.settings import Settings as ServerSettings

    names = {*settings_env(BotSettings).names, *settings_env(ServerSettings).names}
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
