"""OpenAI-compatible endpoints, for clients other than the bot (Open WebUI, LangChain, the SDK).

``POST /v1/chat/completions``: user and assistant messages become user and bot
turns, the last message (a user's) is the query. System and developer messages
are ignored: the model was trained on dialogues, without instructions. A
streamed answer is generated in the same shared batches as ``/answer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse

from dialogue.format import Turn
from model_server.engines.base import Answer, SamplingOverrides
from model_server.openai_schemas import ChatCompletionRequest, ErrorResponse, ModelCard, ModelList
from model_server.routes import ServiceDep, limit_problem
from model_server.service import EmptyQueryError, NotReadyError, QueueFullError, UnsupportedRequestError

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse} for status in (400, 404, 413, 503, 504)
}


def openai_error(
    status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """OpenAI answers an invalid request with 400 and its error shape."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    return openai_error(400, f"{where}: {first['msg']}" if where else str(first["msg"]))


@router.get("/models", response_model=ModelList)
async def models(service: ServiceDep) -> ModelList:
    """The one model this server serves."""
    return ModelList(data=[ModelCard(id=service.settings.model_name_or_path)])


def _turns(body: ChatCompletionRequest) -> tuple[list[Turn], str] | str:
    """Context and query of the conversation, or why it cannot be answered."""
    dialogue = [m for m in body.messages if m.role in ("user", "assistant")]
    if not dialogue or dialogue[-1].role != "user":
        return "the last message must be the user's"
    turns = [Turn("user" if m.role == "user" else "bot", m.text()) for m in dialogue]
    return turns[:-1], turns[-1].text


@router.post("/chat/completions", responses=_ERRORS)
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep) -> Any:
    """An answer to the conversation in ``messages``; with ``stream`` as server-sent events."""
    s = service.settings
    if body.model != s.model_name_or_path:
        return openai_error(404, f"The model {body.model!r} does not exist", code="model_not_found")
    parsed = _turns(body)
    if isinstance(parsed, str):
        return openai_error(400, parsed)
    context, query = parsed
    problem = limit_problem(s, query, context)
    max_tokens = body.max_completion_tokens or body.max_tokens
    if problem:
        return openai_error(400, problem)
    overrides = SamplingOverrides(body.temperature, body.top_p, body.seed)
    chunks = _Chunks(body.model)
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def on_text(piece: str) -> None:  # in the engine's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
            loop.call_soon_threadsafe(pieces.put_nowait, piece)

    task = asyncio.create_task(
        service.answer(
            context, query, max_new_tokens=max_tokens, stop=body.stop_strings(), overrides=overrides,
            on_text=on_text if body.stream else None,
        )
    )  # fmt: skip
    task.add_done_callback(lambda _: pieces.put_nowait(None))
    first = await pieces.get()
    if first is None and (failure := _failure(task)) is not None:
        return failure
    if not body.stream:
        return chunks.completion(task.result())
    return StreamingResponse(chunks.stream(first, pieces, task), media_type="text/event-stream")


def _failure(task: asyncio.Task[Answer]) -> JSONResponse | None:
    error = task.exception()
    if error is None:
        return None
    if isinstance(error, EmptyQueryError):
        return openai_error(400, "the last user message is empty")
    if isinstance(error, UnsupportedRequestError):
        return openai_error(400, str(error))
    if isinstance(error, NotReadyError):
        return openai_error(503, "model is not loaded yet", "server_error")
    if isinstance(error, QueueFullError):
        return openai_error(503, "server is overloaded, try again later", "server_error")
    if isinstance(error, TimeoutError):
        return openai_error(504, "generation took too long", "server_error")
    return openai_error(500, "generation failed", "server_error")


class _Chunks:
    """OpenAI's response objects of one completion."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.model = model
        self.created = int(time.time())

    def _object(self, kind: str, choice: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def completion(self, answer: Answer) -> dict[str, Any]:
        message = {"role": "assistant", "content": answer.text}
        return self._object(
            "chat.completion", {"index": 0, "message": message, "finish_reason": answer.finish_reason}
        )

    def _event(self, delta: dict[str, Any], finish_reason: str | None = None) -> str:
        chunk = self._object(
            "chat.completion.chunk", {"index": 0, "delta": delta, "finish_reason": finish_reason}
        )
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    async def stream(
        self, first: str | None, pieces: asyncio.Queue[str | None], task: asyncio.Task[Answer]
    ) -> AsyncIterator[str]:
        yield self._event({"role": "assistant", "content": first or ""})
        piece = first
        while piece is not None:
            piece = await pieces.get()
            if piece is not None:
                yield self._event({"content": piece})
        await asyncio.wait([task])
        failure = task.exception()
        if failure is not None:
            message = "generation took too long" if isinstance(failure, TimeoutError) else "generation failed"
            yield f"data: {json.dumps({'error': {'message': message, 'type': 'server_error'}})}\n\n"
        else:
            yield self._event({}, task.result().finish_reason)
        yield "data: [DONE]\n\n"
