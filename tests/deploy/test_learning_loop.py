"""The learning loop end to end: a corpus in the bot's database → ``python -m finetuning.retrain``
→ a promoted model in MODELS_DIR/current → the running model server swaps it in, answering throughout."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path

import httpx

from benchmarks.server_processes import ModelServer
from tests.finetuning.test_retrain import corpus, flags
from tests.finetuning.train_fixtures import context_rows
from tests.model_server.test_swap import point

ROOT = Path(__file__).resolve().parents[2]


async def test_a_promoted_model_reaches_the_running_server_with_no_failed_request(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    models = tmp_path / "models"
    first = Path(shutil.copytree(tiny_model_dir, models / "20260101T000000Z"))
    point(models / "current", first)
    url = await asyncio.to_thread(corpus, tmp_path / "bot.sqlite3", context_rows())
    env = {"MODEL_WATCH_S": "0.5", "GEN_DO_SAMPLE": "false", "GEN_NUM_BEAMS": "1"}
    server = ModelServer(models / "current", "transformers", "float32", env, batch=4)
    statuses: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            before = (await http.get("/health")).json()
            retrain = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "finetuning.retrain", "--from-database", url,
                "--models_dir", str(models), "--output_dir", str(tmp_path / "run"), *flags(),
                cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            output = asyncio.create_task(retrain.communicate())
            # A steady stream of requests while the challenger trains, is judged and is swapped in.
            deadline = time.monotonic() + 900
            after = before
            while after["model_revision"] == before["model_revision"] or not output.done():
                assert time.monotonic() < deadline, "no swap within 15 minutes"
                response = await http.post("/answer", json={"query": "привет, как дела?"})
                statuses.append(response.status_code)
                after = (await http.get("/health")).json()
                if output.done() and retrain.returncode != 0:
                    break
                await asyncio.sleep(0.2)
            log = (await output)[0].decode()
            # Answers after the swap come from the promoted model.
            statuses += [(await http.post("/answer", json={"query": "а ты?"})).status_code for _ in range(3)]
    finally:
        server.stop()
    assert retrain.returncode == 0, log
    decision = json.loads((tmp_path / "run" / "promotion.json").read_text())
    assert decision["decision"] == "promoted", decision
    assert log.strip().splitlines()[-1].startswith("promoted: ")
    published = (models / "current").resolve()
    assert published != first.resolve() and published == Path(decision["published"]).resolve()
    assert after["model_revision"] != before["model_revision"]
    assert after["model_loaded_at"] > before["model_loaded_at"]
    assert len(statuses) > 20 and set(statuses) == {200}, statuses
