"""Presses of the /settings keyboard, as Telegram sends them (callback_query updates)."""

from __future__ import annotations

import itertools
from typing import Any

from aiogram.types import Update

from tests.bot.group_updates import bot_message

_ids = itertools.count(10_000)


def press(chat_id: int, user: dict[str, Any], data: str, keyboard_message_id: int = 900) -> Update:
    """``user`` presses the button ``data`` ("cfg:mode:all") under the bot's keyboard message."""
    return Update.model_validate(
        {
            "update_id": next(_ids),
            "callback_query": {
                "id": str(next(_ids)),
                "from": user,
                "chat_instance": "instance",
                "message": bot_message(chat_id, keyboard_message_id, "Настройки"),
                "data": data,
            },
        }
    )


def buttons(markup: Any) -> list[list[str]]:
    """The keyboard's button texts, row by row."""
    return [[button.text for button in row] for row in markup.inline_keyboard]
