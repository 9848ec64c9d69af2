"""Voice messages: check the limits, download in memory, recognise, then answer like text."""

from __future__ import annotations

import io
import logging

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message, User
from aiohttp import ClientError

from bot.core import texts
from bot.core.i18n import gettext as _
from bot.core.learning import Learning
from bot.core.model_client import ModelClient
from bot.core.speech import AudioDecodeError, AudioTooLong, RecognitionUnavailable, Recognizer
from bot.settings import Settings
from bot.storage.chat_settings import ChatSettings
from bot.storage.context_store import ContextStore
from bot.telegram.chat_settings import collect_message
from bot.telegram.sending import answer_and_remember, reply

log = logging.getLogger(__name__)


async def voice_message(
    message: Message,
    bot: Bot,
    settings: Settings,
    store: ContextStore,
    model: ModelClient,
    recognizer: Recognizer | None,
    me: User,
    learning: Learning,
    chat_settings: ChatSettings,
) -> None:
    assert message.voice is not None
    voice = message.voice
    if recognizer is None:
        await reply(message, _(texts.VOICE_UNAVAILABLE))
        return
    if voice.duration > settings.voice_max_seconds:
        await reply(message, _(texts.VOICE_TOO_LONG).format(seconds=settings.voice_max_seconds))
        return
    if voice.file_size is not None and voice.file_size > settings.voice_max_bytes:
        await reply(message, _(texts.VOICE_TOO_BIG).format(megabytes=settings.voice_max_bytes / 2**20))
        return

    buffer = io.BytesIO()
    try:
        await bot.download(voice, destination=buffer)
    except (TelegramAPIError, ClientError, TimeoutError) as exc:
        # Only the type: the message of a download error contains the file URL, token included.
        log.warning("voice download failed: %s", type(exc).__name__)
        await reply(message, _(texts.VOICE_DOWNLOAD_FAILED))
        return

    try:
        transcript = await recognizer.transcribe(buffer.getvalue())
    except AudioTooLong:
        await reply(message, _(texts.VOICE_TOO_LONG).format(seconds=settings.voice_max_seconds))
        return
    except AudioDecodeError as exc:
        log.info("undecodable voice message: %s", exc)
        await reply(message, _(texts.VOICE_UNREADABLE))
        return
    except RecognitionUnavailable as exc:
        log.warning("recognition unavailable: %s", exc)
        await reply(message, _(texts.VOICE_UNAVAILABLE))
        return
    if not transcript:
        await reply(message, _(texts.VOICE_EMPTY))
        return

    await collect_message(message, transcript, learning, chat_settings)
    await reply(message, _(texts.RECOGNIZED).format(transcript=transcript), plain=True)
    await answer_and_remember(message, transcript, store, model, me, stream=settings.stream_answers)


def build_router() -> Router:
    router = Router(name="voice")
    router.message.register(voice_message, F.voice)
    return router
