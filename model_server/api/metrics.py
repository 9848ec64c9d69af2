"""``GET /metrics`` for Prometheus, and the middleware that counts and times ``/answer``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from model_server.api.deps import ServiceDep, get_service

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def record_answer_metrics(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Count /answer requests by status and time them, whatever path they took."""
    if request.url.path != "/answer":
        return await call_next(request)
    started = time.perf_counter()
    response = await call_next(request)
    service = get_service(request)
    service.metrics.requests.labels(status=str(response.status_code)).inc()
    service.metrics.latency.observe(time.perf_counter() - started)
    return response
