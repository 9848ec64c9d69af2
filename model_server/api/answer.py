"""``POST /answer``: the bot's endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from model_server.api.deps import ServiceDep
from model_server.api.limits import check_limits
from model_server.schemas import AnswerRequest, AnswerResponse, ErrorResponse

router = APIRouter()


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
    check_limits(service.settings, body.query, context)
    # The service's refusals reach the app's handler (model_server.api.errors).
    result = await service.answer(context, body.query)
    return AnswerResponse(answer=result.text)
