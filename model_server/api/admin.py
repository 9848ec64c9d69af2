"""``POST /admin/reload``: swap in the model MODEL_NAME_OR_PATH names now, without a restart.

Mounted only when API_KEY is set (404 otherwise) and only with that key (401).
The call returns once the new model answers (``swapped``), at once when the
files are those serving (``unchanged``), or 409 with the reason when the new
model is refused and the old one keeps serving.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from model_server.api.deps import ServiceDep, require_api_key
from model_server.api.errors import ApiError
from model_server.schemas import ErrorResponse, ReloadResponse
from model_server.service import ModelRefusedError

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_api_key)])


@router.post(
    "/reload",
    response_model=ReloadResponse,
    responses={
        401: {"model": ErrorResponse, "description": "No API key, or not API_KEY"},
        409: {"model": ErrorResponse, "description": "The new model failed to load or warm up"},
        503: {"model": ErrorResponse, "description": "The first model is still loading"},
    },
)
async def reload(service: ServiceDep) -> ReloadResponse:
    """Load the model at MODEL_NAME_OR_PATH beside the one serving and swap it in between batches."""
    try:
        status = await service.reload()
    except ModelRefusedError as exc:
        raise ApiError(409, f"new model refused, the old one keeps serving: {exc}") from None
    assert service.served is not None
    return ReloadResponse(status=status, model_revision=service.served.revision)
