"""Client of the model server's ``POST /answer`` and its streamed ``/v1/chat/completions``.

See docs/architecture.md, the model server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.settings import Settings
from dialogue.format import Turn

log = logging.getLogger(__name__)


class ModelServerError(RuntimeError):
    """The model server gave no answer; subclasses say why."""


class ModelServerUnavailable(ModelServerError):
    """Connection refused or dropped, or the server is loading / overloaded (503)."""


class ModelServerTimeout(ModelServerError):
    """No answer within the timeout, ours or the server's own (504)."""


class ModelServerFailed(ModelServerError):
    """The server broke (5xx other than 503/504) or answered something unreadable."""


class ModelServerRejected(ModelServerError):
    """The server refused the request (4xx, e.g. 422 for a query it cannot take)."""


@dataclass(frozen=True, slots=True)
class Health:
    """``GET /health``: ``ready`` once the model is loaded and can answer; the body as sent."""

    ready: bool
    body: dict[str, Any]


class ModelClient:
    """One shared ``httpx.AsyncClient`` (connection pool) for every update.

    At most ``max_concurrency`` requests are in flight; the others wait on a
    semaphore, which is much cheaper than waiting in httpcore's pool (whose
    bookkeeping grows with waiting requests times connections). ``timeout_s``
    bounds the whole answer, waiting included.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        client: httpx.AsyncClient | None = None,
        max_concurrency: int = 16,
        api_key: str | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.base_url = base_url
        self._slots = asyncio.Semaphore(max_concurrency)
        # The model server's API_KEY (MODEL_SERVER_API_KEY here), when it has one.
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        self._model_id: str | None = None  # what /v1/models names, asked once
        self._client = client or httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(5.0, timeout_s)),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )

    @classmethod
    def for_settings(cls, settings: Settings, base_url: str | None = None) -> ModelClient:
        """The client the bot and the terminal chat use: URL, timeout, concurrency and key from settings."""
        key = settings.model_server_api_key
        return cls(
            base_url or settings.model_server_url,
            settings.answer_timeout_s,
            max_concurrency=settings.model_max_concurrency,
            api_key=key.get_secret_value() if key else None,
        )

    async def answer(self, query: str, context: Sequence[Turn]) -> str:
        payload = {"query": query, "context": [{"role": t.role, "text": t.text} for t in context]}
        try:
            async with asyncio.timeout(self.timeout_s), self._slots:
                response = await self._client.post("/answer", json=payload)
        except (httpx.TimeoutException, TimeoutError) as exc:
            raise ModelServerTimeout("model server did not answer in time") from exc
        except httpx.TransportError as exc:
            raise ModelServerUnavailable(f"model server unreachable: {type(exc).__name__}") from exc

        _check_status(response.status_code)
        try:
            answer = response.json()["answer"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelServerFailed("model server sent an unreadable answer") from exc
        if not isinstance(answer, str):
            raise ModelServerFailed("model server sent a non-text answer")
        return answer

    async def stream(self, query: str, context: Sequence[Turn]) -> AsyncIterator[str]:
        """The answer's pieces as the model writes them; the errors of :meth:`answer`, midway too.

        ``timeout_s`` bounds the whole stream. The pieces join to the text
        ``/answer`` gives (``dialogue.format.normalize`` it to be sure).
        """
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        with _transport_errors():
            async with asyncio.timeout_at(deadline):
                await self._slots.acquire()
            try:
                async with asyncio.timeout_at(deadline):
                    request = self._client.build_request(
                        "POST", "/v1/chat/completions", json=await self._completion(query, context)
                    )
                    response = await self._client.send(request, stream=True)
                try:
                    if response.status_code == 404:  # a server restarted with another model: ask anew
                        self._model_id = None
                    _check_status(response.status_code)
                    lines = response.aiter_lines()
                    while True:
                        # Per read, not around the yield: the time the caller spends is not ours to cancel.
                        async with asyncio.timeout_at(deadline):
                            line = await anext(lines, None)
                        if line is None:
                            raise ModelServerUnavailable("model server closed the stream before its end")
                        piece = _piece(line)
                        if piece is None:
                            return
                        if piece:
                            yield piece
                finally:
                    await response.aclose()
            finally:
                self._slots.release()

    async def _completion(self, query: str, context: Sequence[Turn]) -> dict[str, Any]:
        if self._model_id is None:
            # The server serves one model under its MODEL_NAME_OR_PATH, which OpenAI's API asks to name.
            response = await self._client.get("/v1/models")
            _check_status(response.status_code)
            try:
                self._model_id = str(response.json()["data"][0]["id"])
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise ModelServerFailed("model server sent an unreadable model list") from exc
        messages = [{"role": "user" if t.role == "user" else "assistant", "content": t.text} for t in context]
        messages.append({"role": "user", "content": query})
        return {"model": self._model_id, "messages": messages, "stream": True}

    async def health(self, timeout_s: float = 5.0) -> Health:
        """The server's state; raises :class:`ModelServerUnavailable` when nothing answers."""
        try:
            response = await self._client.get("/health", timeout=timeout_s)
        except httpx.HTTPError as exc:
            raise ModelServerUnavailable(f"model server unreachable: {type(exc).__name__}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        return Health(response.status_code == 200, body if isinstance(body, dict) else {})

    async def aclose(self) -> None:
        await self._client.aclose()


def _check_status(status: int) -> None:
    if status == 503:
        raise ModelServerUnavailable("model server is loading or overloaded (503)")
    if status == 504:
        raise ModelServerTimeout("model server timed out generating (504)")
    if status >= 500:
        raise ModelServerFailed(f"model server error {status}")
    if status >= 400:
        raise ModelServerRejected(f"model server rejected the request ({status})")


@contextlib.contextmanager
def _transport_errors() -> Iterator[None]:
    try:
        yield
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise ModelServerTimeout("model server did not answer in time") from exc
    except httpx.TransportError as exc:
        raise ModelServerUnavailable(f"model server unreachable: {type(exc).__name__}") from exc


def _piece(line: str) -> str | None:
    """The text of one SSE line ("" for none), None at ``[DONE]``; an error event raises."""
    if not line.startswith("data:"):
        return ""  # blank lines between events, comments, other fields
    data = line[5:].strip()
    if data == "[DONE]":
        return None
    try:
        event = json.loads(data)
        if "error" in event:
            # The status went out with the first event; the error's words are all there is.
            raise ModelServerFailed(f"model server failed midway: {event['error'].get('message', '?')}")
        content = event["choices"][0]["delta"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelServerFailed("model server sent an unreadable stream event") from exc
    return content if isinstance(content, str) else ""
