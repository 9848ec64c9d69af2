"""The one definition of the dialogue text format (see ARCHITECTURE.md).

A sample is messages m1..mk (oldest first) and a response r. Speaker tags
alternate backwards from the response, so r is always ``@@ВТОРОЙ@@``:

    @@ПЕРВЫЙ@@ m1 @@ВТОРОЙ@@ m2 @@ПЕРВЫЙ@@ m3 @@ВТОРОЙ@@ r<eos>

Training uses :func:`training_text`; serving sends :func:`serving_prompt` to
the model and cuts the answer out of the text of the new tokens with
:func:`cut_answer` (the engines stop at EOS themselves: it is a token, not text).
Because every text passes through :func:`normalize` on both sides, training
text == serving prompt + " " + response + eos, token for token.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

FIRST_SPEAKER = "@@ПЕРВЫЙ@@"
SECOND_SPEAKER = "@@ВТОРОЙ@@"
# Every tag starts with it; the answer is cut at its first occurrence.
TAG_PREFIX = "@@"
CONTEXT_SIZE = 3

Role = Literal["user", "bot"]
Speaker = TypeVar("Speaker", bound=Hashable)

_WHITESPACE = re.compile(r"\s+")
# A message may not contain "@@": otherwise a user could forge a speaker tag
# inside the prompt. Runs of "@" collapse to one, on both sides alike.
_AT_RUN = re.compile(r"@{2,}")
# What an answer never contains: control characters and the replacement character of broken bytes.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]")


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation as the bot and the server see it."""

    role: Role
    text: str


def normalize(text: str) -> str:
    """Newlines and runs of whitespace become one space; "@@" becomes "@"."""
    # Most texts are already normal. In a printable str the only whitespace is
    # " " (every other \s character is unprintable), so these checks suffice.
    if text.isprintable() and "  " not in text and "@@" not in text and text[:1] != " " and text[-1:] != " ":
        return text
    return _WHITESPACE.sub(" ", _AT_RUN.sub("@", text)).strip()


def merge_consecutive(turns: Iterable[tuple[Speaker, str]]) -> list[tuple[Speaker, str]]:
    """Normalise texts, drop empty ones and join neighbours of the same speaker."""
    merged: list[tuple[Speaker, str]] = []
    for speaker, text in turns:
        clean = normalize(text)
        if not clean:
            continue
        if merged and merged[-1][0] == speaker:
            merged[-1] = (speaker, f"{merged[-1][1]} {clean}")
        else:
            merged.append((speaker, clean))
    return merged


def speaker_tag(turns_before_response: int) -> str:
    """Tag of the message that stands this many turns before the response.

    The response itself is 0 and gets the second speaker.
    """
    return SECOND_SPEAKER if turns_before_response % 2 == 0 else FIRST_SPEAKER


def prompt_text(messages: Sequence[str]) -> str:
    """Tagged messages (oldest first, already normalised) ending with the response tag."""
    n = len(messages)
    parts = [f"{speaker_tag(n - i)} {text}" for i, text in enumerate(messages)]
    parts.append(SECOND_SPEAKER)
    return " ".join(parts)


def training_text(
    messages: Sequence[str], response: str, eos_token: str, context_size: int = CONTEXT_SIZE
) -> str:
    """Training sample: messages (oldest first) then the response and EOS.

    Empty messages (missing context cells) are skipped; the response must not
    be empty after normalisation.
    """
    return training_prompt(messages, context_size) + " " + _require(response) + eos_token


def training_prompt(messages: Sequence[str], context_size: int = CONTEXT_SIZE) -> str:
    """The part of :func:`training_text` before the response: what the loss masks."""
    clean = [m for m in (normalize(m) for m in messages) if m]
    return prompt_text(clean[-context_size:])


def serving_messages(context: Sequence[Turn], query: str, context_size: int = CONTEXT_SIZE) -> list[str]:
    """Messages the model sees for answering ``query`` after ``context`` (oldest first).

    Same-role neighbours are merged, then the last ``context_size`` messages
    (the query included) are kept, exactly as data preparation does.
    """
    turns = merge_consecutive([(t.role, t.text) for t in context] + [("user", _require(query))])
    return [text for _, text in turns][-context_size:]


def serving_prompt(context: Sequence[Turn], query: str, context_size: int = CONTEXT_SIZE) -> str:
    """Prompt for answering ``query`` after ``context``: ends with the response tag."""
    return prompt_text(serving_messages(context, query, context_size))


def cut_answer(decoded: str) -> str:
    """The answer in the text decoded from the new tokens: up to the first speaker tag, one line.

    The model goes on to write the next speaker's turn, hence the cut. Control
    characters and broken bytes are dropped. "" when nothing is left; the
    caller decides on a fallback.
    """
    return normalize(_UNPRINTABLE.sub("", decoded.split(TAG_PREFIX, 1)[0]))


def _require(text: str) -> str:
    clean = normalize(text)
    if not clean:
        raise ValueError("message is empty after normalisation")
    return clean
