"""Builds the FastAPI app: the model loads once in the lifespan, in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from model_server.routes import record_answer_metrics, router
from model_server.service import ModelService
from model_server.settings import Settings, get_settings


def create_app(
    settings: Settings | None = None, on_load_failure: Callable[[str], None] | None = None
) -> FastAPI:
    """``on_load_failure`` is called with the reason when the model cannot load.

    The process entry point uses it to stop the server; tests read /health.
    """
    service = ModelService(settings or get_settings())

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
    app.middleware("http")(record_answer_metrics)
    app.include_router(router)
    return app
