"""Hot swap: a new model at MODEL_NAME_OR_PATH is loaded beside the old one and swapped in between batches."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from benchmarks.server_processes import ModelServer
from model_server.settings import Settings
from tests.model_server.conftest import ENGINES, build_serving_model, greedy, greedy_reference, serve

QUERY = "привет"
KEY = "swap-test-key"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny models whose greedy answers to QUERY differ (seeds picked for it), and a broken copy."""
    root = tmp_path_factory.mktemp("models")
    old, new = build_serving_model(root / "old", seed=16), build_serving_model(root / "new", seed=18)
    broken = Path(shutil.copytree(old, root / "broken"))
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return {"old": old, "new": new, "broken": broken}


@pytest.fixture(scope="module")
def answers(models: dict[str, Path]) -> dict[str, str]:
    """Each model's greedy answer to QUERY, computed without the server."""
    found = {name: greedy_reference(models[name])([], QUERY) for name in ("old", "new")}
    assert found["old"] and found["new"] and found["old"] != found["new"]
    return found


def point(link: Path, target: Path) -> None:
    """Re-point ``link`` atomically, as finetuning.retrain publishes a model."""
    staged = link.with_name(f".{link.name}.new")
    staged.unlink(missing_ok=True)
    staged.symlink_to(target)
    os.replace(staged, link)


def keyed_settings(current: Path, watch_s: float) -> Settings:
    """A greedy CTranslate2 server of ``current`` with the admin API on."""
    return Settings(
        model_name_or_path=str(current), engine="ctranslate2", engine_compute_type="float32",
        generation=greedy(), model_watch_s=watch_s, api_key=SecretStr(KEY),
    )  # fmt: skip


def health(url: str) -> dict:
    return httpx.get(f"{url}/health", timeout=10).json()


# A server without API_KEY ignores it; one with it (the admin API's) needs it on /answer too.
AUTH = {"Authorization": f"Bearer {KEY}"}


def ask(url: str) -> str:
    response = httpx.post(f"{url}/answer", json={"query": QUERY}, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["answer"])


async def steady_stream(
    url: str, change: Callable[[], None], until: Callable[[dict], bool], clients: int = 3
) -> list[tuple[float, int, str]]:
    """Requests back to back from ``clients`` clients: 1 s, ``change()``, until ``until(/health)``, 2 s more.

    Each is (seconds sent after the change, status, answer).
    """
    done = asyncio.Event()
    results: list[tuple[float, int, str]] = []

    async def client(http: httpx.AsyncClient) -> None:
        while not done.is_set():
            sent = time.monotonic()
            response = await http.post("/answer", json={"query": QUERY})
            results.append((sent, response.status_code, response.json().get("answer", response.text)))

    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as http:
        tasks = [asyncio.create_task(client(http)) for _ in range(clients)]
        await asyncio.sleep(1)
        changed = time.monotonic()
        change()
        deadline = changed + 120
        while not until((await http.get("/health")).json()):
            assert time.monotonic() < deadline, "no swap within 120 s"
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
        done.set()
        await asyncio.gather(*tasks)
    return [(sent - changed, status, answer) for sent, status, answer in results]


@pytest.mark.parametrize("engine", ENGINES)
async def test_a_repointed_current_is_swapped_in_under_load_with_no_failed_request(
    tmp_path: Path, models: dict[str, Path], answers: dict[str, str], engine: str
) -> None:
    current = tmp_path / "current"
    point(current, models["old"])
    env = {"MODEL_WATCH_S": "0.3", "GEN_DO_SAMPLE": "false", "GEN_NUM_BEAMS": "1"}
    server = ModelServer(current, engine, "float32", env, batch=8)
    try:
        before = health(server.url)
        assert ask(server.url) == answers["old"]
        results = await steady_stream(
            server.url,
            lambda: point(current, models["new"]),
            lambda h: h["model_revision"] != before["model_revision"],
        )
        after = health(server.url)
        assert ask(server.url) == answers["new"]
    finally:
        server.stop()
    assert [status for _, status, _ in results] == [200] * len(results)
    assert after["model_loaded_at"] > before["model_loaded_at"]
    # Every answer comes whole from one model or the other; the last ones from the new one.
    assert {answer for _, _, answer in results} <= {answers["old"], answers["new"]}
    assert results[-1][2] == answers["new"]
    assert {answer for sent, _, answer in results if sent < 0} == {answers["old"]}


async def test_admin_reload_swaps_with_the_key_and_refuses_without(
    tmp_path: Path, models: dict[str, Path], answers: dict[str, str]
) -> None:
    current = tmp_path / "current"
    point(current, models["old"])
    settings = keyed_settings(current, watch_s=0)
    with serve(settings) as live:
        before = health(live.url)
        point(current, models["new"])
        reload = f"{live.url}/admin/reload"
        no_key = httpx.post(reload, timeout=60)
        wrong_key = httpx.post(reload, headers={"Authorization": "Bearer not-the-key"}, timeout=60)
        unswapped = health(live.url)["model_revision"], ask(live.url)
        swapped = httpx.post(reload, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        after = health(live.url)
        answer = ask(live.url)
        again = httpx.post(reload, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    assert (no_key.status_code, wrong_key.status_code) == (401, 401)
    assert unswapped == (before["model_revision"], answers["old"])
    assert swapped.status_code == 200
    assert swapped.json() == {"status": "swapped", "model_revision": after["model_revision"]}
    assert after["model_revision"] != before["model_revision"]
    assert answer == answers["new"]
    assert again.json() == {"status": "unchanged", "model_revision": after["model_revision"]}


def test_without_api_key_there_is_no_admin_reload(server_settings) -> None:
    with serve(server_settings(model_watch_s=0)) as live:
        response = httpx.post(
            f"{live.url}/admin/reload", headers={"Authorization": "Bearer anything"}, timeout=30
        )
    assert response.status_code == 404


async def test_a_broken_new_model_is_refused_once_and_the_old_keeps_serving(
    tmp_path: Path, models: dict[str, Path], answers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    current = tmp_path / "current"
    point(current, models["old"])
    settings = keyed_settings(current, watch_s=0.2)

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if "new model refused" in r.getMessage()]

    with serve(settings) as live:
        before = health(live.url)
        point(current, models["broken"])
        deadline = time.monotonic() + 60
        while not refusals():
            assert time.monotonic() < deadline, "the broken model was never tried"
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # several more watch intervals: not tried again
        watched = refusals()
        during = health(live.url), ask(live.url)
        forced = httpx.post(
            f"{live.url}/admin/reload", headers={"Authorization": f"Bearer {KEY}"}, timeout=60
        )
        # The watch goes on: a good model after the broken one is swapped in.
        results = await steady_stream(
            live.url,
            lambda: point(current, models["new"]),
            lambda h: h["model_revision"] != before["model_revision"],
        )
    assert len(watched) == 1 and "keeps serving" in watched[0]
    assert during[0]["status"] == "ok" and during[0]["model_revision"] == before["model_revision"]
    assert during[1] == answers["old"]
    assert forced.status_code == 409 and "new model refused" in forced.json()["detail"]
    assert [status for _, status, _ in results] == [200] * len(results)
    assert results[-1][2] == answers["new"]
