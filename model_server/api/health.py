"""``GET /health``: whether the model is loaded and can answer, and how it runs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from model_server.api.deps import ServiceDep
from model_server.schemas import HealthResponse

router = APIRouter()


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
