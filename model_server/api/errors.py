"""The one table of refusals: which failure gets which status, in either API's error shape.

The answer API (``/answer``, ``/health``…) answers FastAPI's ``{"detail": message}``;
the OpenAI-compatible one (``/v1/…``) answers OpenAI's ``{"error": {"message",
"type", "param", "code"}}``, and 400 where the answer API says 422.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from model_server.openai_schemas import ErrorBody, ErrorResponse
from model_server.service import EmptyQueryError, NotReadyError, QueueFullError, UnsupportedRequestError

INVALID: Final = "invalid_request_error"
SERVER: Final = "server_error"


class Shape(Enum):
    ANSWER = "answer"
    OPENAI = "openai"

    @classmethod
    def of(cls, path: str) -> Shape:
        return cls.OPENAI if path.startswith("/v1/") else cls.ANSWER


class ApiError(Exception):
    """A refusal and its words for the client; ``kind`` and ``code`` are OpenAI's."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = INVALID,
        code: str | None = None,
        openai_message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        # Where OpenAI's client knows no "query": its words for the same refusal.
        self.openai_message = openai_message or message
        self.headers = headers

    def status_for(self, shape: Shape) -> int:
        return 400 if shape is Shape.OPENAI and self.status == 422 else self.status

    def body(self, shape: Shape) -> dict[str, Any]:
        if shape is Shape.ANSWER:
            return {"detail": self.message}
        error = ErrorBody(message=self.openai_message, type=self.kind, code=self.code)
        return ErrorResponse(error=error).model_dump()


@dataclass(frozen=True, slots=True)
class _Row:
    status: int
    message: str  # "": the exception's own
    kind: str = SERVER
    openai_message: str | None = None


_TABLE: Final[dict[type[Exception], _Row]] = {
    EmptyQueryError: _Row(422, "query is empty", INVALID, "the last user message is empty"),
    UnsupportedRequestError: _Row(422, "", INVALID),
    NotReadyError: _Row(503, "model is not loaded yet"),
    QueueFullError: _Row(503, "server is overloaded, try again later"),
    TimeoutError: _Row(504, "generation took too long"),
}
# What the service raises on purpose; anything else is a crash.
HANDLED: Final[tuple[type[Exception], ...]] = (ApiError, *_TABLE)
_CRASH: Final = _Row(500, "generation failed")


def api_error(exc: Exception) -> ApiError:
    """The refusal for ``exc``: its row of the table, or 500 for a crash."""
    if isinstance(exc, ApiError):
        return exc
    row = next((row for kind, row in _TABLE.items() if isinstance(exc, kind)), _CRASH)
    return ApiError(row.status, row.message or str(exc), kind=row.kind, openai_message=row.openai_message)


def error_response(exc: Exception, shape: Shape) -> JSONResponse:
    error = api_error(exc)
    return JSONResponse(error.body(shape), status_code=error.status_for(shape), headers=error.headers)


async def handle(request: Request, exc: Exception) -> Response:
    """The app's handler of every exception in :data:`HANDLED`."""
    return error_response(exc, Shape.of(request.url.path))


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A body that does not parse: FastAPI's 422 list of errors, or OpenAI's 400 naming the first."""
    assert isinstance(exc, RequestValidationError)
    if Shape.of(request.url.path) is Shape.ANSWER:
        # FastAPI's own answer, with non-ASCII escaped: an echoed lone surrogate cannot be UTF-8.
        detail = json.dumps({"detail": jsonable_encoder(exc.errors())})
        return Response(detail, status_code=422, media_type="application/json")
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(part) for part in first["loc"] if part != "body")
    return error_response(
        ApiError(422, f"{where}: {first['msg']}" if where else str(first["msg"])), Shape.OPENAI
    )
