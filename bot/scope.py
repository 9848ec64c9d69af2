"""Whose conversation a message belongs to: (chat, sender) (see ARCHITECTURE.md, section Bot)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiogram.types import Message


@dataclass(frozen=True, slots=True)
class Scope:
    """One conversation: a private chat has chat_id == user_id; a group has one per sender."""

    chat_id: int
    user_id: int


def sender_id(message: Message) -> int:
    """The conversation's user: ``sender_chat`` for anonymous admins and "send as channel".

    Every anonymous admin of every group arrives as the same user (1087968824,
    GroupAnonymousBot) with ``sender_chat`` set, so ``from`` would merge them.
    """
    if message.sender_chat is not None:
        return message.sender_chat.id
    assert message.from_user is not None, "a message has a sender_chat or a from"
    return message.from_user.id


def scope_of(message: Message) -> Scope:
    return Scope(chat_id=message.chat.id, user_id=sender_id(message))
