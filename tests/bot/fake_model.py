"""A model server stand-in for handler tests: httpx's MockTransport behind the real ModelClient."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bot.core.model_client import ModelClient


class FakeModelServer:
    """Answers ``POST /answer`` with "ответ на: <query>"; ``mode`` switches on failures."""

    def __init__(self) -> None:
        self.mode = "ok"  # ok | down | timeout | 500 | 503 | 504 | 422 | long | empty
        self.delay_s = 0.0
        self.delay_for: dict[str, float] = {}  # query -> seconds, overrides delay_s
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
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
