"""A Bot API answer's type is built once per process, not again for each call (bot CPU per message)."""

import gc
import weakref

from aiogram.methods.base import Response
from aiogram.types import Message

from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.settings import Settings
from bot.telegram.app import build_bot
from tests.bot.conftest import TOKEN


def _response_type() -> type:
    # Asked for inside a function, as aiogram's session does: pydantic then holds it only weakly.
    return Response[Message]


async def test_the_answer_type_of_sendmessage_survives_garbage_collection(api: FakeBotAPI) -> None:
    bot = build_bot(Settings(telegram_api_url=api.base_url), TOKEN)
    try:
        sent = await bot.send_message(chat_id=42, text="раз")
        kept = weakref.ref(_response_type())
        gc.collect()
        # Freed, the next sendMessage builds its schema and validator again: ~8% of the bot's CPU.
        assert kept() is not None
        again = await bot.send_message(chat_id=42, text="два")
        assert (sent.text, again.text) == ("раз", "два")
    finally:
        await bot.session.close()
