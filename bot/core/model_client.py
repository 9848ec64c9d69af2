"""Client of the model server's ``POST /answer`` (see docs/architecture.md, the model server)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
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

        status = response.status_code
        if status == 503:
            raise ModelServerUnavailable("model server is loading or overloaded (503)")
        if status == 504:
            raise ModelServerTimeout("model server timed out generating (504)")
        if status >= 500:
            raise ModelServerFailed(f"model server error {status}")
        if status >= 400:
            raise ModelServerRejected(f"model server rejected the request ({status})")
        try:
            answer = response.json()["answer"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelServerFailed("model server sent an unreadable answer") from exc
        if not isinstance(answer, str):
            raise ModelServerFailed("model server sent a non-text answer")
        return answer

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
