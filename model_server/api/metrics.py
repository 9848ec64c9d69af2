"""``GET /metrics`` for Prometheus, and the middleware that counts and times the answering routes."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_server.api.deps import ServiceDep
from model_server.metrics import ROUTES, ServerMetrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class RecordMetrics:
    """Counts requests to :data:`ROUTES` by status and times them to their last byte.

    Plain ASGI rather than an ``http`` middleware: a streamed answer is timed
    until its ``[DONE]``, not until its headers went out.
    """

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path")
        if scope["type"] != "http" or route not in ROUTES:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers for an app that fails before it starts a response

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)
