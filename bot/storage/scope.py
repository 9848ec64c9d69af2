"""Whose conversation a message belongs to: (chat, sender) (see docs/architecture.md, the bot)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiogram.types import Message


@dataclass(frozen=True, slots=True)
class Scope:
    """One conversation: a private chat has chat_id == user_id; a group has one per sender."""

    chat_id: int
    user_id: int


def sender_id(message: Message | Mapping[str, Any]) -> int | None:
    """Who wrote a message: aiogram's ``Message`` or the raw JSON the inbox stores.

    ``sender_chat`` comes first: every anonymous admin of every group arrives as
    the same user (1087968824, GroupAnonymousBot) with ``sender_chat`` set, so
    ``from`` would merge them; "send as channel" works the same way. None for a
    message with neither.
    """
    if isinstance(message, Mapping):
        sender = message.get("sender_chat") or message.get("from") or {}
        return sender.get("id")
    author = message.sender_chat or message.from_user
    return author.id if author is not None else None


def scope_of(message: Message) -> Scope:
    user_id = sender_id(message)
    assert user_id is not None, "a message has a sender_chat or a from"
    return Scope(chat_id=message.chat.id, user_id=user_id)
