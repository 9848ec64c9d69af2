"""finetuning.evaluate on a model from the hub reads its dialogue.json, as the model server does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dialogue.model_facts import DialogueFacts
from tests.finetuning.train_fixtures import small_data_dir

ROOT = Path(__file__).resolve().parents[2]
REPO = "someone/tiny-chat"
REVISION = "0123456789abcdef0123456789abcdef01234567"


class _Hub(BaseHTTPRequestHandler):
    """The hub's metadata call answers (the model is there); every file request is refused (403).

    huggingface_hub then takes each file from its cache, where the model is
    (a 5xx would cost minutes of its retries), so the run needs no network and
    no copy of the hub's file protocol.
    """

    def do_GET(self) -> None:
        if self.path.split("?")[0].rstrip("/") == f"/api/models/{REPO}":
            body = json.dumps({"id": REPO, "modelId": REPO, "sha": REVISION, "private": False}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_error(403)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def cache_model(hf_home: Path, model_dir: Path, context_size: int) -> None:
    """``model_dir`` in huggingface_hub's cache as ``REPO``, its dialogue.json saying ``context_size``."""
    repo = hf_home / "hub" / f"models--{REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(model_dir, snapshot)
    DialogueFacts(context_size=context_size).save(snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)


def test_a_hub_model_is_evaluated_with_the_context_size_it_was_trained_with(
    tiny_model_dir: Path, tmp_path: Path, hub: str
) -> None:
    cache_model(tmp_path / "hf", tiny_model_dir, context_size=2)
    data = small_data_dir(tmp_path / "data", n_rows=8)
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "finetuning.evaluate", "--model_name_or_path", REPO]
        + ["--data_dir", str(data), "--output_dir", str(out)],
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HF_HOME": str(tmp_path / "hf"),
            "HF_ENDPOINT": hub,
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
        },
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((out / "context_ablation.json").read_text())
    assert results["model"] == REPO and results["context_size"] == 2
