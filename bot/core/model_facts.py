"""At start-up: the model server's /health says which CONTEXT_SIZE its model was trained with."""

from __future__ import annotations

import logging

from bot.core.model_client import ModelClient, ModelServerError
from bot.settings import Settings

log = logging.getLogger(__name__)


async def adopt_server_context_size(settings: Settings, model: ModelClient) -> Settings:
    """``settings`` with the server's context size unless CONTEXT_SIZE was set; a server away is fine."""
    try:
        served = int((await model.health()).body["context_size"])
    except (ModelServerError, ValueError, KeyError, TypeError) as exc:
        reason = type(exc).__name__
        log.info("model server's context size unknown (%s); using %d", reason, settings.context_size)
        return settings
    if "context_size" not in settings.model_fields_set:
        if served != settings.context_size:
            log.info("context size %d, as the model server's model was trained", served)
        return settings.model_copy(update={"context_size": served})
    if served != settings.context_size:
        log.warning(
            "CONTEXT_SIZE=%d differs from the model server's %d: prompts will not match training",
            settings.context_size,
            served,
        )
    return settings
