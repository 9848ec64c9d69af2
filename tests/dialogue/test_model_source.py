"""Where a model loads from: a wrong path or an unreachable hub fails in seconds, with one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from benchmarks.support.net import free_port
from dialogue import model_source
from dialogue.model_source import ModelSourceError, looks_like_path, resolve_model_source

ROOT = Path(__file__).resolve().parents[2]
SETTING = "MODEL_NAME_OR_PATH"


@pytest.fixture
def hub_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A Hugging Face cache holding ``org/cached`` (the tiny model), laid out as huggingface_hub does."""
    repo = tmp_path / "hub" / "models--org--cached"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / "0123abcd")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return repo / "snapshots" / "0123abcd"


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub_refusing(monkeypatch: pytest.MonkeyPatch, online: None) -> None:
    """A hub endpoint where nothing listens: connections are refused."""
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{free_port()}")


@pytest.fixture
def hub_silent(monkeypatch: pytest.MonkeyPatch, online: None) -> Iterator[None]:
    """A hub endpoint that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        monkeypatch.setattr(model_source, "HUB_TIMEOUT_S", 1.0)
        yield


@pytest.mark.parametrize(
    ("name", "is_path"),
    [
        ("./model", True),
        ("/models/x", True),
        ("~/models/x", True),
        ("outputs/run/final", True),
        ("model", False),
        ("tinkoff-ai/ruDialoGPT-medium", False),
        ("outputs/tiny-rn", False),  # one slash: a hub id, and the hub is asked
    ],
)
def test_path_like_names(name: str, is_path: bool) -> None:
    assert looks_like_path(name) is is_path


def test_a_local_directory_is_used_as_is(tiny_model_dir: Path) -> None:
    assert resolve_model_source(str(tiny_model_dir), SETTING) == str(tiny_model_dir)


@pytest.mark.parametrize("name", ["./outputs/tiny-rn", "/no/such/model", "outputs/runs/tiny-rn"])
def test_a_missing_directory_fails_at_once(name: str) -> None:
    started = time.monotonic()
    with pytest.raises(ModelSourceError, match=f"^{SETTING}={name}: directory does not exist$"):
        resolve_model_source(name, SETTING)
    assert time.monotonic() - started < 1


def test_a_file_is_not_a_model_directory(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ModelSourceError, match="not a directory"):
        resolve_model_source(str(tmp_path / "model.bin"), SETTING)


def test_offline_a_cached_hub_model_loads_from_the_cache(hub_cache: Path) -> None:
    assert constants.HF_HUB_OFFLINE  # the test suite runs offline
    assert Path(resolve_model_source("org/cached", SETTING)) == hub_cache


def test_offline_a_model_not_in_the_cache_fails_clearly(hub_cache: Path) -> None:
    with pytest.raises(ModelSourceError) as error:
        resolve_model_source("org/missing", SETTING)
    message = str(error.value)
    assert "HF_HUB_OFFLINE=1" in message and "not in the local Hugging Face cache" in message
    assert f"set {SETTING} to a local model directory" in message and "\n" not in message


@pytest.mark.parametrize("hub", ["hub_refusing", "hub_silent"])
def test_an_unreachable_hub_fails_in_seconds_naming_the_setting(
    request: pytest.FixtureRequest, hub_cache: Path, hub: str
) -> None:
    request.getfixturevalue(hub)
    started = time.monotonic()
    with pytest.raises(ModelSourceError) as error:
        resolve_model_source("org/missing", "--model_name_or_path")
    assert time.monotonic() - started < 5
    message = str(error.value)
    assert message.startswith("--model_name_or_path=org/missing: ")
    assert "the Hugging Face hub cannot be reached" in message
    assert "set --model_name_or_path to a local model directory" in message and "\n" not in message


def test_an_unreachable_hub_leaves_the_cached_copy_usable(hub_cache: Path, hub_refusing: None) -> None:
    # transformers itself would retry each file for about a minute before falling back to the cache.
    assert Path(resolve_model_source("org/cached", SETTING)) == hub_cache


def model_server(model: str, **env: str) -> tuple[subprocess.CompletedProcess[str], float]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "model_server"],
        cwd=ROOT,
        env={**base, "MODEL_NAME_OR_PATH": model, "PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result, time.monotonic() - started


def test_the_model_server_stops_at_once_on_a_missing_directory() -> None:
    result, elapsed = model_server("./outputs/tiny-rn", HF_HUB_OFFLINE="1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "model_server: MODEL_NAME_OR_PATH=./outputs/tiny-rn: directory does not exist"
    )
    assert elapsed < 60, "start-up (imports) only; no retries"


def test_the_model_server_stops_in_seconds_when_the_hub_is_unreachable(tmp_path: Path) -> None:
    # Online mode, an empty cache, and a hub address where nothing answers: before, ~50 s of retries.
    result, elapsed = model_server(
        "outputs/tiny-rn", HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT=f"http://127.0.0.1:{free_port()}"
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("model_server: MODEL_NAME_OR_PATH=outputs/tiny-rn: no such local directory")
    assert "hub cannot be reached" in last and "set MODEL_NAME_OR_PATH to a local model directory" in last
    assert elapsed < 40
