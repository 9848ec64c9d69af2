"""The CONTEXT_SIZE the model server's model was trained with, from /health: at start-up, after a swap."""

from __future__ import annotations

import logging
from typing import Any

from bot.core.model_client import ModelClient, ModelServerError
from bot.settings import Settings

log = logging.getLogger(__name__)


async def adopt_server_context_size(settings: Settings, model: ModelClient) -> Settings:
    """``settings`` with the server's context size unless CONTEXT_SIZE was set; a server away is fine."""
    try:
        body = (await model.health()).body
    except ModelServerError as exc:
        log.info(
            "model server's context size unknown (%s); using %d", type(exc).__name__, settings.context_size
        )
        return settings
    return settings.model_copy(
        update={"context_size": served_context_size(settings, body, settings.context_size)}
    )


def served_context_size(settings: Settings, health: dict[str, Any], current: int) -> int:
    """The context size to use: the served model's unless CONTEXT_SIZE was set; ``current`` when unknown."""
    try:
        served = int(health["context_size"])
    except (ValueError, KeyError, TypeError) as exc:
        log.info("model server's context size unknown (%s); using %d", type(exc).__name__, current)
        return current
    if "context_size" not in settings.model_fields_set:
        if served != current:
            log.info("context size %d, as the model server's model was trained", served)
        return served
    if served != settings.context_size:
        log.warning(
            "CONTEXT_SIZE=%d differs from the model server's %d: prompts will not match training",
            settings.context_size,
            served,
        )
    return settings.context_size
