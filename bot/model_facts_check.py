"""At start-up: the model server's /health says which CONTEXT_SIZE its model was trained with."""

from __future__ import annotations

import logging

import httpx

from bot.settings import Settings

log = logging.getLogger(__name__)


async def adopt_server_context_size(settings: Settings, timeout_s: float = 5.0) -> Settings:
    """``settings`` with the server's context size unless CONTEXT_SIZE was set; a server away is fine."""
    try:
        async with httpx.AsyncClient(base_url=settings.model_server_url, timeout=timeout_s) as client:
            body = (await client.get("/health")).json()
        served = int(body["context_size"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
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
