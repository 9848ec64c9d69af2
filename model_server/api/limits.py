"""The configurable size limits of a request, the same for both APIs."""

from __future__ import annotations

from collections.abc import Sequence

from dialogue.format import Turn
from model_server.api.errors import ApiError
from model_server.settings import Settings


def check_limits(settings: Settings, query: str, context: Sequence[Turn]) -> None:
    """ApiError (422) naming the first limit that ``query`` and ``context`` break."""
    s = settings
    problem = None
    if len(query) > s.max_query_chars:
        problem = f"query is longer than {s.max_query_chars} characters"
    elif len(context) > s.max_context_items:
        problem = f"context has more than {s.max_context_items} messages"
    elif any(len(m.text) > s.max_message_chars for m in context):
        problem = f"a context message is longer than {s.max_message_chars} characters"
    if problem:
        raise ApiError(422, problem)
