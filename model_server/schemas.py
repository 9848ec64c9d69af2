"""Request and response bodies of the HTTP API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dialogue.format import Turn


class ContextMessage(BaseModel):
    role: Literal["user", "bot"]
    text: str = Field(description="Message text; empty ones are skipped")


class AnswerRequest(BaseModel):
    query: str = Field(min_length=1, description="The new user message")
    context: list[ContextMessage] = Field(default_factory=list, description="Earlier messages, oldest first")

    def turns(self) -> list[Turn]:
        return [Turn(m.role, m.text) for m in self.context]


class AnswerResponse(BaseModel):
    answer: str


class ErrorResponse(BaseModel):
    detail: str


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    model: str
    device: str | None = None
    detail: str | None = None
