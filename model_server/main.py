"""Builds the FastAPI app: the model loads once in the lifespan, in the background."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from model_server import openai_routes
from model_server.body_limit import BodyLimit
from model_server.routes import record_answer_metrics, router
from model_server.service import ModelService
from model_server.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, on_load_failure: Callable[[str], None] | None = None
) -> FastAPI:
    """``on_load_failure`` is called with the reason when the model cannot load.

    The process entry point uses it to stop the server; tests read /health.
    """
    settings = settings or get_settings()
    service = ModelService(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Loading takes minutes on a first download: serve /health (503) meanwhile.
        loading = asyncio.create_task(service.load(on_load_failure))
        try:
            yield
        finally:
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            await service.close()

    app = FastAPI(
        title="ruDialoGPT model server",
        description="Answers a Russian dialogue in the shared ruDialoGPT format.",
        version="1.0",
        lifespan=lifespan,
    )
    app.state.service = service

    async def invalid_request(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/v1/"):
            return await openai_routes.validation_error(request, exc)
        assert isinstance(exc, RequestValidationError)
        # FastAPI's own answer, with non-ASCII escaped: an echoed lone surrogate cannot be UTF-8.
        detail = json.dumps({"detail": jsonable_encoder(exc.errors())})
        return Response(detail, status_code=422, media_type="application/json")

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.middleware("http")(record_answer_metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(router)
    app.include_router(openai_routes.router)
    return app
