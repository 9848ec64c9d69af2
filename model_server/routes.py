"""HTTP endpoints: /answer, /health, /metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dialogue.format import Turn
from model_server.schemas import AnswerRequest, AnswerResponse, ErrorResponse, HealthResponse
from model_server.service import EmptyQueryError, ModelService, NotReadyError, QueueFullError
from model_server.settings import Settings

router = APIRouter()


def get_service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


ServiceDep = Annotated[ModelService, Depends(get_service)]


def _refuse(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


def limit_problem(settings: Settings, query: str, context: Sequence[Turn]) -> str | None:
    """What breaks the configurable size limits, or None."""
    s = settings
    if len(query) > s.max_query_chars:
        return f"query is longer than {s.max_query_chars} characters"
    if len(context) > s.max_context_items:
        return f"context has more than {s.max_context_items} messages"
    if any(len(m.text) > s.max_message_chars for m in context):
        return f"a context message is longer than {s.max_message_chars} characters"
    return None


@router.post(
    "/answer",
    response_model=AnswerResponse,
    responses={
        422: {"description": "Invalid request"},
        503: {"model": ErrorResponse, "description": "Model loading or server overloaded"},
        504: {"model": ErrorResponse, "description": "Generation took too long"},
    },
)
async def answer(body: AnswerRequest, service: ServiceDep) -> AnswerResponse:
    """Answer ``query`` as the bot, given the earlier messages in ``context``."""
    context = body.turns()
    problem = limit_problem(service.settings, body.query, context)
    if problem:
        raise _refuse(422, problem)
    try:
        result = await service.answer(context, body.query)
    except EmptyQueryError:
        raise _refuse(422, "query is empty") from None
    except NotReadyError:
        raise _refuse(503, "model is not loaded yet") from None
    except QueueFullError:
        raise _refuse(503, "server is overloaded, try again later") from None
    except TimeoutError:
        raise _refuse(504, "generation took too long") from None
    return AnswerResponse(answer=result.text)


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
async def health(service: ServiceDep) -> JSONResponse:
    """200 once the model is loaded and has answered a warm-up prompt, 503 before."""
    s = service.settings
    if service.ready:
        body = HealthResponse.model_validate(
            {"status": "ok", "model": s.model_name_or_path} | service.describe()
        )
        return JSONResponse(body.model_dump(exclude_none=True))
    status = "failed" if service.load_error else "loading"
    body = HealthResponse(status=status, model=s.model_name_or_path, detail=service.load_error)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503)


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
    service: ModelService = request.app.state.service
    service.metrics.requests.labels(status=str(response.status_code)).inc()
    service.metrics.latency.observe(time.perf_counter() - started)
    return response
