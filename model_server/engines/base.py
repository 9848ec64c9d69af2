"""What both engines share: the prompt, one generation request, and where an answer ends.

An engine generates a batch of :class:`GenerationRequest` in one call. Every
new token of a row goes through that row's :class:`AnswerTracker`, which
decides when the row is done (EOS, the speaker tag, a stop string, its token
budget, its deadline) and hands a streamed request's new text to its ``on_text`` (the
batcher's: consumers read ``ModelService.generate``). Both engines stop a row as soon
as its tracker says so, instead of running all ``max_new_tokens`` steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dialogue.format import TAG_PREFIX, Turn, cut_answer, serving_messages, serving_prompt


class EngineSettingError(ValueError):
    """A setting the engine cannot honour; the message is one line naming it."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    # OpenAI's words: "length" when the token budget ran out, else "stop".
    finish_reason: str = "stop"
    # OpenAI's usage: the prompt's tokens, and the tokens generated (a stop string's and EOS too).
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class SamplingOverrides:
    """Per-request settings that a whole generate call shares; equal ones batch together."""

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


@dataclass(slots=True)
class GenerationRequest:
    prompt: list[int]
    max_new_tokens: int
    stop: tuple[str, ...] = ()
    # The batcher's, for a streamed request: called in the engine's thread with each new piece.
    on_text: Callable[[str], None] | None = field(default=None, repr=False)
    # The batcher's: called in the engine's thread with the answer once the row is done, which in a
    # batch may be well before the call returns.
    on_done: Callable[[Answer], None] | None = field(default=None, repr=False)
    overrides: SamplingOverrides = SamplingOverrides()
    # time.monotonic() past which the caller no longer waits: the row stops there, so a
    # request that timed out (504) stops using the CPU too. None: no time limit.
    deadline: float | None = None


# What a generation stream yields: the answer's new pieces (when streamed), then the whole Answer.
StreamItem = str | Answer

# The batcher's, for an engine that decodes step by step: given the rows running, the requests
# that arrived meanwhile and may join them now.
Admit = Callable[[int], list[GenerationRequest]]


class Tokenizer(Protocol):
    """What the server uses of a Hugging Face tokenizer."""

    @property
    def eos_token_id(self) -> int | None: ...

    def __call__(self, text: str) -> Any: ...

    def decode(self, token_ids: Any, skip_special_tokens: bool = ..., **kwargs: Any) -> Any: ...

    def convert_ids_to_tokens(self, ids: Any) -> Any: ...


class AnswerTracker:
    """One row of a batch: its tokens so far, whether it is done, and what was streamed."""

    def __init__(self, tokenizer: Tokenizer, request: GenerationRequest, stop: Sequence[str]) -> None:
        self._tokenizer = tokenizer
        self._request = request
        self._stops = tuple(s for s in (TAG_PREFIX, *stop, *request.stop) if s)
        self._ids: list[int] = []
        self._generated = 0
        self._text = ""
        self._sent = ""
        self.done = False
        self.finish_reason = "stop"

    def push(self, token_id: int) -> bool:
        """Take the row's next token; True once the row needs no more."""
        if self.done:
            return True
        if self._request.deadline is not None and time.monotonic() >= self._request.deadline:
            return self.finish("length")
        self._generated += 1
        if token_id == self._tokenizer.eos_token_id:
            return self.finish()
        self._ids.append(token_id)
        self._text = str(self._tokenizer.decode(self._ids, skip_special_tokens=True))
        cut = min((i for i in (self._text.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self._text = self._text[:cut]
            return self.finish()
        if len(self._ids) >= self._request.max_new_tokens:
            self.finish_reason = "length"
            return self.finish()
        self._stream(final=False)
        return False

    def finish(self, reason: str | None = None) -> bool:
        """End the row; ``reason`` when the engine ended it (its steps ran out)."""
        if self.done:
            return True
        if reason is not None:
            self.finish_reason = reason
        self.done = True
        self._stream(final=True)
        if self._request.on_done is not None:
            self._request.on_done(self.answer)
        return True

    def _stream(self, final: bool) -> None:
        if self._request.on_text is None:
            return
        text = self._text
        if not final:
            # Hold back what may still become a stop string or a multi-byte character.
            text = text[: len(text) - self._partial_stop(text)].rstrip("\ufffd")
        answer = cut_answer(text)
        if answer.startswith(self._sent) and len(answer) > len(self._sent):
            # A word is sent with the space before it, never a trailing space.
            self._request.on_text(answer[len(self._sent) :])
            self._sent = answer

    def _partial_stop(self, text: str) -> int:
        """Length of the longest end of ``text`` that begins a stop string."""
        longest = max(len(s) for s in self._stops)
        for n in range(min(longest - 1, len(text)), 0, -1):
            if any(s.startswith(text[-n:]) for s in self._stops):
                return n
        return 0

    @property
    def answer(self) -> Answer:
        return Answer(cut_answer(self._text), self.finish_reason, len(self._request.prompt), self._generated)


class Engine(Protocol):
    """What the server needs of a loaded model, whichever engine runs it."""

    name: str
    compute_type: str
    device: str
    context_size: int
    max_new_tokens: int
    notes: list[str]
    # Whether a request's ``seed`` makes its sampling repeatable.
    honours_seed: bool
    # How many generate calls may run at once (CTranslate2's replicas).
    parallel_calls: int

    def encode(self, context: Sequence[Turn], query: str) -> list[int]: ...

    def generate(self, requests: Sequence[GenerationRequest], admit: Admit | None = None) -> list[Answer]:
        """The answers to ``requests``; an engine that decodes step by step also takes what
        ``admit`` hands over between its steps (answered through their ``on_done``)."""
        ...


@dataclass
class PromptEncoder:
    """The shared format's prompt as token ids that leave room for the answer."""

    tokenizer: Tokenizer
    context_size: int
    max_prompt_tokens: int

    def encode(self, context: Sequence[Turn], query: str) -> list[int]:
        """The oldest messages go first; a query too long on its own keeps its end."""
        kept = len(serving_messages(context, query, self.context_size))
        for size in range(kept, 0, -1):
            ids: list[int] = self.tokenizer(serving_prompt(context, query, size))["input_ids"]
            if len(ids) <= self.max_prompt_tokens:
                return ids
        return ids[-self.max_prompt_tokens :]
