"""Builds the FastAPI app: the model loads once in the lifespan, in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError

from model_server.api import admin, answer, errors, health, metrics, openai
from model_server.api.body_limit import BodyLimit
from model_server.api.deps import require_api_key
from model_server.service import ModelService
from model_server.settings import Settings, get_settings
from model_server.swap import watch, watched


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
        async def start() -> None:
            await service.load(on_load_failure)
            if service.ready and watched(settings):
                await watch(service)

        # Loading takes minutes on a first download: serve /health (503) meanwhile.
        loading = asyncio.create_task(start())
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

    app.add_exception_handler(RequestValidationError, errors.invalid_request)
    for refusal in errors.HANDLED:
        app.add_exception_handler(refusal, errors.handle)
    app.add_middleware(metrics.RecordMetrics, metrics=service.metrics)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    # /health stays open: compose's healthcheck and the bot's start-up wait carry no key.
    for module in (answer, metrics, openai):
        app.include_router(module.router, dependencies=[Depends(require_api_key)])
    if settings.api_key is not None and settings.api_key.get_secret_value():
        # Without a key there is no admin API at all: 404.
        app.include_router(admin.router)
    return app
