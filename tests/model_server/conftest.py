from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from model_server.main import create_app
from model_server.service import ModelService
from model_server.settings import GenerationSettings, Settings
from tests.support.net import free_port


def greedy(**overrides: Any) -> GenerationSettings:
    """Deterministic generation, so answers can be compared."""
    return GenerationSettings(do_sample=False, num_beams=1, **overrides)


@dataclass
class LiveServer:
    url: str
    app: FastAPI

    @property
    def service(self) -> ModelService:
        service: ModelService = self.app.state.service
        return service


@contextmanager
def serve(settings: Settings, wait_ready: bool = True) -> Iterator[LiveServer]:
    """The real app under uvicorn on a loopback port, in a thread of this process."""
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/health", timeout=5).status_code
        except httpx.TransportError:
            status = None
        if status == 200 or (status is not None and not wait_ready):
            break
        if status == 503 and app.state.service.load_error:
            break
        time.sleep(0.05)
    else:
        raise TimeoutError("model server did not start")
    try:
        yield LiveServer(url, app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def server_settings(tiny_model_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {"model_name_or_path": str(tiny_model_dir), "generation": greedy()}
        fields.update(overrides)
        return Settings(**fields)

    return make


@pytest.fixture(scope="module")
def shared_server(tiny_model_dir: Path) -> Iterator[LiveServer]:
    """One greedy server for the tests that only read from it."""
    with serve(Settings(model_name_or_path=str(tiny_model_dir), generation=greedy())) as live:
        yield live
