"""ModelClient.stream: against the real model server (tiny GPT-2), and its failures midway."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from benchmarks.support.net import free_port
from benchmarks.support.processes import model_server_env, start_module, stop, wait_healthy
from bot.core.model_client import (
    ModelClient,
    ModelServerError,
    ModelServerFailed,
    ModelServerRejected,
    ModelServerTimeout,
    ModelServerUnavailable,
)
from dialogue.format import Turn, normalize


@pytest.fixture(scope="module")
async def served_model(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("model") / "model_server.log"
    process = start_module("model_server", model_server_env(tiny_model_dir, port), log)
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@pytest.mark.timeout(180)
async def test_streamed_pieces_join_to_the_answer_of_answer(served_model: str) -> None:
    client = ModelClient(served_model, 30.0)
    try:
        conversations = [
            ("привет", []),
            ("как дела?", [Turn("user", "привет"), Turn("bot", "здравствуй")]),
            ("что нового", [Turn("bot", "ну и погода сегодня")]),
        ]
        for query, context in conversations:
            pieces = [piece async for piece in client.stream(query, context)]
            # Greedy decoding: the same request gives the same text either way.
            assert normalize("".join(pieces)) == await client.answer(query, context)
            assert all(pieces)
    finally:
        await client.aclose()


def _sse(*events: str) -> bytes:
    return "".join(f"data: {e}\n\n" for e in events).encode()


PIECE = '{"choices": [{"delta": {"content": "ответ"}}]}'
BOOM = '{"error": {"message": "boom"}}'


@pytest.mark.parametrize(
    ("response", "error"),
    [
        (httpx.Response(503), ModelServerUnavailable),
        (httpx.Response(504), ModelServerTimeout),
        (httpx.Response(200, content=_sse(PIECE, BOOM, "[DONE]")), ModelServerFailed),
        (httpx.Response(200, content=_sse(PIECE)), ModelServerUnavailable),  # closed before [DONE]
        (httpx.Response(200, content=_sse("not json")), ModelServerFailed),
    ],
)
async def test_stream_failures_are_the_model_server_errors(
    response: httpx.Response, error: type[ModelServerError]
) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://model")
    client = ModelClient("http://model", 5.0, client=http)
    got: list[str] = []
    with pytest.raises(error):
        async for piece in client.stream("привет", []):
            got.append(piece)
    assert got in ([], ["ответ"])  # what arrived before the failure came through
    await client.aclose()


async def test_stream_that_stalls_times_out_within_the_answer_timeout() -> None:
    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "m"}]})

        async def stalling() -> AsyncIterator[bytes]:
            yield _sse(PIECE)
            await asyncio.sleep(30)

        return httpx.Response(200, content=stalling())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://model")
    client = ModelClient("http://model", 0.5, client=http)
    with pytest.raises(ModelServerTimeout):
        async for _ in client.stream("привет", []):
            pass
    await client.aclose()


async def test_a_server_restarted_with_another_model_is_asked_its_name_again() -> None:
    served = {"name": "old"}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": served["name"]}]})
        if json.loads(request.content)["model"] != served["name"]:
            return httpx.Response(404, json={"error": {"message": "no such model"}})
        return httpx.Response(200, content=_sse(PIECE, "[DONE]"))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), base_url="http://model")
    client = ModelClient("http://model", 5.0, client=http)
    assert [p async for p in client.stream("привет", [])] == ["ответ"]
    served["name"] = "new"
    with pytest.raises(ModelServerRejected):
        [p async for p in client.stream("привет", [])]
    assert [p async for p in client.stream("привет", [])] == ["ответ"]
    await client.aclose()
