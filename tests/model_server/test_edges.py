"""Bad input at the edges: huge bodies, lone surrogates, and what an answer may contain."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from tests.model_server.conftest import LiveServer, serve


@pytest.fixture(scope="module")
def small_limit_server(serving_model_dir) -> Iterator[LiveServer]:
    from model_server.settings import Settings
    from tests.model_server.conftest import greedy

    settings = Settings(
        model_name_or_path=str(serving_model_dir),
        engine="transformers",
        generation=greedy(),
        max_body_bytes=2000,
    )
    with serve(settings) as live:
        yield live


@pytest.mark.parametrize("path", ["/answer", "/v1/chat/completions"])
def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    small_limit_server: LiveServer, path: str
) -> None:
    # Declares 100 MB and sends only the head: the answer comes without the rest being read.
    address = urlsplit(small_limit_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        head += "Content-Length: 100000000\r\n\r\n"
        conn.sendall(head.encode() + b'{"query": "')
        reply = conn.recv(65536).decode()
    assert reply.startswith("HTTP/1.1 413")
    assert "larger than 2000 bytes" in reply
    assert ('"error"' in reply) == path.startswith("/v1/")


def test_a_chunked_body_over_the_limit_is_refused_with_413(small_limit_server: LiveServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(f"{small_limit_server.url}/answer", content=chunks(), timeout=30)
    assert response.status_code == 413
    ok = httpx.post(f"{small_limit_server.url}/answer", json={"query": "привет"}, timeout=30)
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "raw"),
    [
        ("/answer", '{"query": "\\ud800"}'),
        ("/answer", '{"query": "a\\ud800b"}'),
        ("/answer", '{"query": "hi", "context": [{"role": "user", "text": "a\\udfffb"}]}'),
        ("/v1/chat/completions", '{"model": "m", "messages": [{"role": "user", "content": "x\\ud800"}]}'),
    ],
)
def test_a_lone_surrogate_is_a_client_error(small_limit_server: LiveServer, path: str, raw: str) -> None:
    response = httpx.post(
        f"{small_limit_server.url}{path}", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == (422 if path == "/answer" else 400)
    assert "surrogate" in response.text or "unicode string" in response.text


def test_answers_carry_no_control_characters_or_broken_bytes(shared_server: LiveServer) -> None:
    # The test model's raw output for these is full of \x11, \x03 and U+FFFD (see conftest).
    for query in ["вопрос номер 0", "что делаешь?", "привет, как дела?", "пойдём гулять в парк"]:
        answer = httpx.post(f"{shared_server.url}/answer", json={"query": query}, timeout=30).json()["answer"]
        assert answer == answer.strip()
        assert all(c.isprintable() for c in answer), repr(answer)
        assert "\ufffd" not in answer


@pytest.fixture(scope="module")
def megabyte_limit_server(serving_model_dir) -> Iterator[LiveServer]:
    from model_server.settings import Settings
    from tests.model_server.conftest import greedy

    settings = Settings(model_name_or_path=str(serving_model_dir), engine="transformers", generation=greedy())
    assert settings.max_body_bytes == 1_000_000
    with serve(settings) as live:
        yield live


def _refusals_by_urllib(url: str, content: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=content, headers={"Content-Type": "application/json"})
    try:
        # A fresh opener: urlopen's global one keeps the proxies of the environment it was first built
        # in (tests/bot/test_speech.py points http_proxy at a dead port while SpeechRecognition calls it).
        with urllib.request.build_opener().open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


@pytest.mark.parametrize("times", [2, 10])
@pytest.mark.parametrize("client", ["urllib", "httpx", "openai"])
def test_a_client_still_sending_an_oversized_body_receives_the_413(
    megabyte_limit_server: LiveServer, client: str, times: int
) -> None:
    # Before, the server closed with the body still arriving: the client saw a connection reset.
    base, limit = megabyte_limit_server.url, 1_000_000
    text = "x" * (times * limit)
    for _ in range(10):
        if client == "openai":
            sdk = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30)
            with pytest.raises(openai.APIStatusError) as caught:
                sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
            status, message = caught.value.status_code, caught.value.message
        elif client == "httpx":
            response = httpx.post(f"{base}/answer", json={"query": text}, timeout=30)
            status, message = response.status_code, response.text
        else:
            status, message = _refusals_by_urllib(f"{base}/answer", json.dumps({"query": text}).encode())
        assert (status, f"larger than {limit} bytes" in message) == (413, True), message
    ok = httpx.post(f"{base}/answer", json={"query": "привет"}, timeout=30)
    assert ok.status_code == 200
