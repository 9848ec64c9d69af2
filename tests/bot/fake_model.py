"""A model server stand-in for handler tests: httpx's MockTransport behind the real ModelClient."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bot.core.model_client import ModelClient


class FakeModelServer:
    """Answers ``POST /answer`` with "ответ на: <query>"; ``mode`` switches on failures.

    ``POST /v1/chat/completions`` streams the same answer as one piece, so that
    a test sees the same messages whether the bot streams or not.
    """

    def __init__(self) -> None:
        self.mode = "ok"  # ok | down | timeout | 500 | 503 | 504 | 422 | long | empty
        self.delay_s = 0.0
        self.delay_for: dict[str, float] = {}  # query -> seconds, overrides delay_s
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"object": "list", "data": [{"id": "fake"}]})
        body = json.loads(request.content)
        if request.url.path == "/v1/chat/completions":
            *context, query = body["messages"]
            role = {"user": "user", "assistant": "bot"}
            body = {
                "query": query["content"],
                "context": [{"role": role[t["role"]], "text": t["content"]} for t in context],
            }
            response = await self._answer(request, body)
            return _as_stream(response) if response.status_code == 200 else response
        return await self._answer(request, body)

    async def _answer(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        self.requests.append(body)
        await asyncio.sleep(self.delay_for.get(body["query"], self.delay_s))
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        if self.mode == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if self.mode.isdigit():
            return httpx.Response(int(self.mode), json={"detail": "error"})
        if self.mode == "empty":  # the model produced nothing
            return httpx.Response(200, json={"answer": ""})
        if self.mode == "long":
            return httpx.Response(
                200, json={"answer": " ".join(["слово"] * 2000)}
            )  # normalised, as the server sends
        return httpx.Response(200, json={"answer": f"ответ на: {body['query']}"})

    def client(self) -> ModelClient:
        transport = httpx.MockTransport(self.handle)
        return ModelClient(
            "http://model", 5.0, client=httpx.AsyncClient(transport=transport, base_url="http://model")
        )


def _as_stream(response: httpx.Response) -> httpx.Response:
    answer = response.json()["answer"]
    events = [{"choices": [{"delta": {"content": answer}}]}] if answer else []
    body = "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})
