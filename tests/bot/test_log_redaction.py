from __future__ import annotations

import io
import logging

import pytest
from aiohttp import ClientResponseError

from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.log_redaction import RedactingFormatter
from bot.settings import Settings
from bot.telegram.app import build_bot

TOKEN = "555:redaction-test-SECRET"


async def test_download_error_carries_the_token_and_the_formatter_masks_it() -> None:
    api = await FakeBotAPI(TOKEN).start()
    bot = build_bot(Settings(telegram_api_url=api.base_url), TOKEN)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(RedactingFormatter("%(levelname)s %(message)s", [TOKEN]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        with pytest.raises(ClientResponseError) as caught:
            await bot.download_file("voice/missing.oga", io.BytesIO())
        # Why the formatter exists: aiohttp's error message is the file URL, token included.
        assert TOKEN in str(caught.value)
        logger.error("download failed: %s", caught.value, exc_info=caught.value)
    finally:
        logger.removeHandler(handler)
        await bot.session.close()
        await api.stop()
    output = stream.getvalue()
    assert "download failed" in output and "***" in output
    assert TOKEN not in output
