"""Running the bot until SIGTERM/SIGINT: take updates (polling or webhook), process them, stop cleanly.

Stopping: no new updates are taken; what is in progress gets SHUTDOWN_GRACE_S to
finish; whatever is left stays in the inbox for the next start (handled then,
never answered with an error now). The caller closes the HTTP clients after this
returns, i.e. after the handlers are done.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.types import Update

from bot.core.i18n import build_i18n, translator
from bot.intake.health import Health
from bot.intake.notices import Apologies, WouldAnswer
from bot.intake.polling import poll
from bot.intake.webhook import register_webhook, start_server
from bot.intake.workers import LINGER_S, Delivery, Process
from bot.settings import Settings
from bot.storage.chat_settings import ChatSettingsStore, StoredSettings
from bot.storage.inbox import Inbox

log = logging.getLogger(__name__)


async def serve(
    settings: Settings, bot: Bot, dp: Dispatcher, inbox: Inbox, would_answer: WouldAnswer, health: Health
) -> None:
    """``would_answer``: the routers' rules for a raw update, for the apology while it cannot be stored."""
    allowed_updates = dp.resolve_used_update_types()

    delivery = Delivery(inbox, _processor(bot, dp), linger_s=LINGER_S[settings.bot_mode])
    apologies = Apologies(bot, translator(build_i18n(), settings.bot_language), would_answer)
    stop = _stop_on_signals()
    # The routers' own start-up (command menu, retention purge), as aiogram's polling would run it.
    lifecycle = {"bot": bot, "dispatcher": dp, "bots": [bot], **dp.workflow_data}
    await dp.emit_startup(**lifecycle)
    # What the previous run left unfinished starts before anything new is taken.
    await delivery.start()

    # Stage 1: take updates until told to stop.
    if settings.bot_mode == "polling":
        # Polling and a webhook exclude each other; pending updates stay at Telegram.
        await bot.delete_webhook(drop_pending_updates=False)
        intake = asyncio.create_task(poll(bot, delivery, allowed_updates, apologies), name="polling")
        log.info("polling Telegram for %s", ", ".join(allowed_updates))
        health.state = "ready"
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({intake, stopping}, return_when=asyncio.FIRST_COMPLETED)
        health.state = "stopping"
        if intake.done() and not intake.cancelled() and intake.exception() is not None:
            error = intake.exception()
            log.error("polling stopped: %s", type(error).__name__, exc_info=error)
        intake.cancel()
        await asyncio.gather(intake, return_exceptions=True)
        stopping.cancel()
    else:
        runner = await start_server(settings, dp, bot, delivery, apologies)
        await register_webhook(settings, bot, allowed_updates)
        health.state = "ready"
        await stop.wait()
        health.state = "stopping"
        await runner.cleanup()  # no new requests; the ones in progress finish storing

    # Stage 2: finish what is in progress; leave the rest in the inbox.
    grace_s = settings.shutdown_grace_s
    log.info("stopping: %d chats in progress get up to %.0f s", delivery.in_progress, grace_s)
    cut_short = await delivery.drain(settings.shutdown_grace_s)
    if cut_short:
        log.warning("stopped: %d chats cut short; their updates stay in the inbox", cut_short)
    else:
        log.info("stopped: nothing left in progress")
    await dp.emit_shutdown(**lifecycle)


def _processor(bot: Bot, dp: Dispatcher) -> Process:
    chat_settings_store: ChatSettingsStore = dp["chat_settings_store"]

    async def process(payload: dict[str, Any], recent_messages: int, stored: StoredSettings | None) -> None:
        update = Update.model_validate(payload, context={"bot": bot})
        data: dict[str, Any] = {"recent_messages": recent_messages}
        if stored is not None:  # read with the update: no query of its own (bot/telegram/chat_settings.py)
            data["chat_settings"] = chat_settings_store.resolve(stored)
        await dp.feed_update(bot, update, **data)

    return process


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
