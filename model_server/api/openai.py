"""OpenAI-compatible endpoints, for clients other than the bot (Open WebUI, LangChain, the SDK).

``POST /v1/chat/completions``: user and assistant messages become user and bot
turns, the last message (a user's) is the query. System and developer messages
are ignored: the model was trained on dialogues, without instructions. A
streamed answer is generated in the same shared batches as ``/answer``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from dialogue.format import Turn
from model_server.api.deps import ServiceDep
from model_server.api.errors import ApiError, Shape, api_error
from model_server.api.limits import check_limits
from model_server.engines.base import Answer, SamplingOverrides, StreamItem
from model_server.metrics import CHAT_ROUTE
from model_server.openai_schemas import ChatCompletionRequest, ErrorResponse, ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 404, 413, 503, 504)
}


@router.get("/models", response_model=ModelList)
async def models(service: ServiceDep) -> ModelList:
    """The one model this server serves."""
    return ModelList(data=[ModelCard(id=service.settings.model_name_or_path)])


def _turns(body: ChatCompletionRequest) -> tuple[list[Turn], str]:
    """Context and query of the conversation; ApiError when it cannot be answered."""
    dialogue = [m for m in body.messages if m.role in ("user", "assistant")]
    if not dialogue or dialogue[-1].role != "user":
        raise ApiError(422, "the last message must be the user's")
    turns = [Turn("user" if m.role == "user" else "bot", m.text()) for m in dialogue]
    return turns[:-1], turns[-1].text


@router.post("/chat/completions", responses=_ERRORS)
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep) -> Any:
    """An answer to the conversation in ``messages``; with ``stream`` as server-sent events."""
    if body.model != service.settings.model_name_or_path:
        raise ApiError(404, f"The model {body.model!r} does not exist", code="model_not_found")
    context, query = _turns(body)
    check_limits(service.settings, query, context)
    items = service.generate(
        context, query, max_new_tokens=body.max_completion_tokens or body.max_tokens,
        stop=body.stop_strings(), overrides=SamplingOverrides(body.temperature, body.top_p, body.seed),
        stream=body.stream, route=CHAT_ROUTE,
    )  # fmt: skip
    try:
        # Awaited here, so that a refusal before the first piece is an HTTP status, not an event.
        first = await anext(items)
    except Exception as exc:  # OpenAI's clients read every failure in its shape, a crash too
        raise api_error(exc) from exc
    chunks = _Chunks(body.model, usage=bool(body.stream_options and body.stream_options.include_usage))
    if not body.stream:
        assert isinstance(first, Answer)  # unstreamed, the answer is the one item
        return chunks.completion(first)
    return StreamingResponse(chunks.stream(first, items), media_type="text/event-stream")


class _Chunks:
    """OpenAI's response objects of one completion."""

    def __init__(self, model: str, *, usage: bool = False) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())
        # Whether a stream ends with the usage chunk (stream_options.include_usage).
        self.usage = usage

    def _object(self, kind: str, choice: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice] if choice is not None else [],
        }

    def completion(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.text}
        choice = {"index": 0, "message": message, "finish_reason": answer.finish_reason}
        return self._object("chat.completion", choice) | {"usage": _usage(answer)}

    def _event(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        chunk = self._object(
            "chat.completion.chunk", {"index": 0, "delta": delta, "finish_reason": finish_reason}
        )
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def stream(self, first: StreamItem, rest: AsyncIterator[StreamItem]) -> AsyncIterator[str]:
        """The events of a streamed answer whose first item came already."""
        yield self._event({"role": "assistant", "content": first if isinstance(first, str) else ""})
        last = first
        try:
            async for item in rest:
                last = item
                if isinstance(item, str):
                    yield self._event({"content": item})
        except Exception as exc:  # the status went out with the first event: the failure is one
            yield f"data: {json.dumps(api_error(exc).body(Shape.OPENAI))}\n\n"
        else:
            assert isinstance(last, Answer)
            yield self._event({}, last.finish_reason)
            if self.usage:
                chunk = self._object("chat.completion.chunk", None) | {"usage": _usage(last)}
                yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
    }
