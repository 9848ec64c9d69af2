"""Updates as Telegram sends them from groups: mentions, replies, anonymous admins, forum topics."""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiogram.types import Update

from tests.bot.mocked_bot import BOT_USER

GROUP = -1001234
OTHER_GROUP = -1005678
ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"}

_ids = itertools.count(1)


def person(user_id: int, language: str | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": f"Человек {user_id}"}
    if language:
        user["language_code"] = language
    return user


def message(
    chat_id: int,
    sender: dict[str, Any],
    text: str | None = None,
    *,
    message_id: int | None = None,
    reply_to: dict[str, Any] | None = None,
    entities: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A message dict; a private chat when ``chat_id`` is the sender's id, else a supergroup."""
    chat = (
        {"id": chat_id, "type": "private", "first_name": "x"}
        if chat_id > 0
        else {"id": chat_id, "type": "supergroup", "title": "Группа", "is_forum": True}
    )
    result: dict[str, Any] = {
        "message_id": message_id or next(_ids),
        "date": int(time.time()),
        "chat": chat,
        "from": sender,
        **fields,
    }
    if text is not None:
        result["text"] = text
        if text.startswith("/"):
            entities = [
                {"type": "bot_command", "offset": 0, "length": len(text.split()[0])},
                *(entities or []),
            ]
        if entities:
            result["entities"] = entities
    if reply_to is not None:
        result["reply_to_message"] = reply_to
    return result


def mention(text: str, username: str = str(BOT_USER["username"])) -> tuple[str, list[dict[str, Any]]]:
    """ "@username text" with its mention entity."""
    return f"@{username} {text}", [{"type": "mention", "offset": 0, "length": len(username) + 1}]


def bot_message(chat_id: int, message_id: int, text: str) -> dict[str, Any]:
    return message(chat_id, BOT_USER, text, message_id=message_id)


def update(content: dict[str, Any]) -> Update:
    return Update.model_validate({"update_id": next(_ids), "message": content})
