"""API_KEY: with it set, the answering routes and /metrics want it as a bearer token; /health does not."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import openai
import pytest

from bot.core.model_client import ModelClient, ModelServerRejected
from tests.model_server.conftest import LiveServer, serve

KEY = "s3cret-key-for-tests-0123456789"
MESSAGES = [{"role": "user", "content": "привет, как дела?"}]


@pytest.fixture(scope="module")
def keyed_server(serving_model_dir) -> Iterator[LiveServer]:
    from model_server.settings import Settings
    from tests.model_server.conftest import greedy

    settings = Settings(
        model_name_or_path=str(serving_model_dir), engine="transformers", generation=greedy(), api_key=KEY
    )
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())
    with serve(settings) as live:
        yield live


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_without_the_key_every_guarded_route_answers_401_in_its_apis_shape(
    keyed_server: LiveServer, headers: dict[str, str]
) -> None:
    url = keyed_server.url
    answer = httpx.post(f"{url}/answer", json={"query": "привет"}, headers=headers)
    model = keyed_server.service.settings.model_name_or_path
    chat_body = {"model": model, "messages": MESSAGES}
    chat = httpx.post(f"{url}/v1/chat/completions", json=chat_body, headers=headers)
    models = httpx.get(f"{url}/v1/models", headers=headers)
    metrics = httpx.get(f"{url}/metrics", headers=headers)
    assert [r.status_code for r in (answer, chat, models, metrics)] == [401] * 4
    assert answer.headers["www-authenticate"] == "Bearer"
    assert "API key" in answer.json()["detail"] and "API key" in metrics.json()["detail"]
    assert chat.json()["error"]["code"] == models.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{url}/health").status_code == 200


def test_with_the_key_the_bot_and_the_openai_sdk_are_answered(
    keyed_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, model = keyed_server.url, keyed_server.service.settings.model_name_or_path
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    assert sdk.chat.completions.create(model=model, messages=MESSAGES).choices[0].message.content
    with pytest.raises(openai.AuthenticationError, match="API key"):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{url}/metrics", headers=headers).status_code == 200
    assert httpx.post(f"{url}/answer", json={"query": "привет"}, headers=headers).status_code == 200
    assert KEY not in caplog.text


async def test_the_bots_client_sends_model_server_api_key(keyed_server: LiveServer) -> None:
    client = ModelClient(keyed_server.url, 60, api_key=KEY)
    keyless = ModelClient(keyed_server.url, 60)
    try:
        assert await client.answer("привет, как дела?", [])
        with pytest.raises(ModelServerRejected, match="401"):
            await keyless.answer("привет", [])
        assert (await keyless.health()).ready
    finally:
        await client.aclose()
        await keyless.aclose()


def test_without_api_key_the_server_is_open(shared_server: LiveServer) -> None:
    assert shared_server.service.settings.api_key is None
    assert httpx.post(f"{shared_server.url}/answer", json={"query": "привет"}).status_code == 200
    assert httpx.get(f"{shared_server.url}/metrics").status_code == 200


def test_an_empty_api_key_is_off(serving_model_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_server.settings import Settings
    from tests.model_server.conftest import greedy

    monkeypatch.setenv("API_KEY", "")
    settings = Settings(model_name_or_path=str(serving_model_dir), engine="transformers", generation=greedy())
    with serve(settings) as live:
        assert httpx.get(f"{live.url}/metrics").status_code == 200
