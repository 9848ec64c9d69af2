"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from dialogue.format import Turn

# A lone surrogate (JSON "\ud800") is no character: it can be neither tokenised nor sent back.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _no_surrogates(text: str) -> str:
    if _SURROGATE.search(text):
        raise ValueError("text contains a lone UTF-16 surrogate")
    return text


Text = Annotated[str, AfterValidator(_no_surrogates)]


class ContextMessage(BaseModel):
    role: Literal["user", "bot"]
    text: Text = Field(description="Message text; empty ones are skipped")


class AnswerRequest(BaseModel):
    query: Text = Field(min_length=1, description="The new user message")
    context: list[ContextMessage] = Field(default_factory=list, description="Earlier messages, oldest first")

    def turns(self) -> list[Turn]:
        return [Turn(m.role, m.text) for m in self.context]


class AnswerResponse(BaseModel):
    answer: str = Field(description='The model\'s answer; "" when it produced nothing')


class ErrorResponse(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    model: str
    engine: str | None = None
    compute_type: str | None = None
    device: str | None = None
    context_size: int | None = None
    # How the engine runs settings it cannot take as they are (CTranslate2: sampling with one beam).
    notes: list[str] | None = None
    # A local model directory's digest, or a hub model's commit; it changes when a new model is swapped in.
    model_revision: str | None = None
    # When the model serving was loaded (ISO 8601, UTC).
    model_loaded_at: str | None = None
    detail: str | None = None


class ReloadResponse(BaseModel):
    status: Literal["swapped", "unchanged"]
    model_revision: str
