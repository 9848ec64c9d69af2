"""Webhook mode: aiogram's aiohttp request handler, answering 200 once the update is in the inbox.

The handler checks ``X-Telegram-Bot-Api-Secret-Token`` (401 otherwise, nothing
processed). Replies go out as Bot API calls from the inbox workers, never in the
webhook response, so any replica may answer any update.
"""

from __future__ import annotations

import logging

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.intake.notices import Apologies
from bot.intake.workers import Delivery
from bot.settings import Settings
from bot.storage.inbox import InboxUnavailable

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class InboxRequestHandler(SimpleRequestHandler):
    """aiogram's handler for one bot, answering 200 only once the update is in the inbox.

    ``handle`` is the handler's public entry (``register`` routes to it); it
    keeps aiogram's own checks (``resolve_bot``, ``verify_secret``) and hands
    the update to the inbox instead of the dispatcher, which the workers feed.
    """

    def __init__(
        self, dispatcher: Dispatcher, bot: Bot, delivery: Delivery, apologies: Apologies, secret_token: str
    ) -> None:
        super().__init__(dispatcher, bot, secret_token=secret_token)
        self.delivery = delivery
        self.apologies = apologies

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), bot):
            return web.Response(body="Unauthorized", status=401)
        try:
            update = await request.json(loads=bot.session.json_loads)
            if not isinstance(update, dict) or "update_id" not in update:
                raise ValueError("not an update")
        except ValueError:
            return web.Response(status=400, text="Bad Request")
        try:
            await self.delivery.accept([update])
        except InboxUnavailable as exc:
            log.warning("update %s not stored: inbox unavailable (%s)", update["update_id"], exc)
            await self.apologies.database_unavailable([update])
            # Telegram delivers it again later.
            return web.Response(status=503, text="Service Unavailable")
        return web.json_response({})

    async def close(self) -> None:
        """The bot's session outlives the web server: handlers still reply after it stopped."""


async def start_server(
    settings: Settings, dp: Dispatcher, bot: Bot, delivery: Delivery, apologies: Apologies
) -> web.AppRunner:
    assert settings.webhook_secret is not None  # Settings requires it in webhook mode
    app = web.Application(client_max_size=1024 * 1024)
    handler = InboxRequestHandler(
        dp, bot, delivery, apologies, secret_token=settings.webhook_secret.get_secret_value()
    )
    handler.register(app, path=settings.webhook_path)
    # Not aiogram's setup_application: it ties the routers' start-up and shutdown to the web
    # server's, and the shutdown must wait for the workers to drain, after the server stopped
    # (serve.py emits both for polling and webhook alike).
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    log.info("webhook listening on %s:%d", settings.webhook_host, settings.webhook_port)
    return runner


async def register_webhook(settings: Settings, bot: Bot, allowed_updates: list[str]) -> None:
    assert settings.webhook_base_url is not None and settings.webhook_secret is not None
    url = settings.webhook_base_url.rstrip("/") + settings.webhook_path
    await bot.set_webhook(
        url,
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=allowed_updates,
        drop_pending_updates=False,
    )
    log.info("webhook set to %s", url)
