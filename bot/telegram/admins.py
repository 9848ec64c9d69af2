"""Who may change a chat's settings: its administrators, asked of the Bot API and cached briefly.

``getChatMember`` per (chat, user), remembered for ``ttl_s`` (a demoted admin
keeps the keys that long). An anonymous admin writes as the shared
GroupAnonymousBot user with the group itself as ``sender_chat``: only an admin
can, so that is an admin without asking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.enums import ChatMemberStatus
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, User
from aiohttp import ClientError

log = logging.getLogger(__name__)

ANONYMOUS_ADMIN_ID = 1087968824  # GroupAnonymousBot
ADMIN_STATUSES = frozenset({ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR})
REMEMBERED = 10_000


class Admins:
    def __init__(self, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._known: dict[tuple[int, int], tuple[float, bool]] = {}

    async def is_admin(
        self, bot: Bot, chat: Chat, user: User | None, sender_chat: Chat | None = None
    ) -> bool:
        if user is None:
            return False
        if user.id == ANONYMOUS_ADMIN_ID and sender_chat is not None and sender_chat.id == chat.id:
            return True
        now, key = self._clock(), (chat.id, user.id)
        known = self._known.get(key)
        if known is not None and now < known[0]:
            return known[1]
        try:
            member = await bot.get_chat_member(chat.id, user.id)
        except (TelegramAPIError, ClientError, TimeoutError) as exc:
            log.warning("getChatMember failed in chat %d: %s", chat.id, type(exc).__name__)
            return False  # not remembered: the next press asks again
        if len(self._known) >= REMEMBERED:
            self._known = {k: v for k, v in self._known.items() if now < v[0]}
        admin = member.status in ADMIN_STATUSES
        self._known[key] = (now + self.ttl_s, admin)
        return admin
