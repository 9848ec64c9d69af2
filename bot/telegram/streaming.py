"""Answers that grow on screen: drafts in a private chat, a reply edited in a group (docs/groups.md).

Intermediate updates are best effort: at most one per interval, tried once
(:func:`bot.telegram.retry.best_effort`), none while a 429's ``retry_after``
runs. The final text is never skipped: it waits out that 429, then goes
through the retrying session like any other message.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessageDraft
from aiogram.types import Message

from bot.telegram.retry import best_effort

log = logging.getLogger(__name__)

TELEGRAM_MESSAGE_LIMIT = 4096
DRAFT_INTERVAL_S = 0.3
EDIT_INTERVAL_S = 1.0  # Telegram's advice: about one message a second per chat
FIRST_WORDS = 3  # a group reply goes out once it has this many words, or after EDIT_INTERVAL_S
GROUP_MESSAGES_PER_MINUTE = 20
REMEMBERED = 10_000

SendPiece = Callable[[str], Awaitable[Message]]
SendWhole = Callable[[str], Awaitable[Sequence[tuple[int, str]]]]


def split_message(text: str, limit: int = TELEGRAM_MESSAGE_LIMIT) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a line break or space where there is one."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= limit // 2:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= limit // 2:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


class GroupWindow:
    """Messages and edits sent to each group, for the whole process: one a second, 20 a minute.

    Telegram's limits for a bot in a group. No rate-limit library is among the
    bot's dependencies, and a deque of send times per chat is all this takes.
    """

    def __init__(
        self, limit: int = GROUP_MESSAGES_PER_MINUTE, period_s: float = 60.0, gap_s: float = EDIT_INTERVAL_S
    ) -> None:
        self.limit = limit
        self.period_s = period_s
        self.gap_s = gap_s
        self._sent: dict[int, deque[float]] = {}

    def _delay(self, chat_id: int, keep: int = 0) -> float:
        """Seconds until a message may go and leave ``keep`` of the minute's for later."""
        now = time.monotonic()
        sent = self._sent.setdefault(chat_id, deque())
        while sent and now - sent[0] >= self.period_s:
            sent.popleft()
        if not sent:
            return 0.0
        gap = sent[-1] + self.gap_s - now
        over = len(sent) + keep - self.limit  # the sends that must leave the minute first, less one
        full = sent[over] + self.period_s - now if over >= 0 else 0.0
        return max(gap, full, 0.0)

    def room(self, chat_id: int, keep: int = 0) -> bool:
        return self._delay(chat_id, keep) == 0.0

    def note(self, chat_id: int) -> None:
        self._sent[chat_id].append(time.monotonic())

    async def wait(self, chat_id: int) -> None:
        """Until a message may go; noted as sent."""
        while (delay := self._delay(chat_id)) > 0:
            await asyncio.sleep(delay)
        self.note(chat_id)
        if len(self._sent) > REMEMBERED:  # bounded memory: forget the groups quiet for a minute
            since = time.monotonic() - self.period_s
            self._sent = {c: s for c, s in self._sent.items() if s and s[-1] > since}


GROUPS = GroupWindow()


class _Growing:
    """What drafts and edits share: the interval, the 429 pause, the text last shown."""

    interval_s = DRAFT_INTERVAL_S

    def __init__(self, message: Message) -> None:
        self.message = message
        self._started = time.monotonic()
        # The first draft comes an interval in, as if one had gone at the start: an answer
        # quicker than that goes out whole, without a draft that would only flicker.
        self._last_at = self._started
        self._quiet_until = 0.0
        self._stopped = False  # Telegram refused an update (drafts not allowed, say): no more of them

    def _ready(self, text: str) -> bool:
        return True

    async def show(self, text: str) -> None:
        now = time.monotonic()
        if self._stopped or now < self._quiet_until or now - self._last_at < self.interval_s:
            return
        if not text or not self._ready(text):
            return
        try:
            with best_effort():
                await self._update(text)
        except TelegramRetryAfter as exc:
            self._quiet_until = time.monotonic() + exc.retry_after
            log.info("chat %d: 429 on an update, none for %d s", self.message.chat.id, exc.retry_after)
        except (TelegramServerError, TelegramNetworkError) as exc:
            log.info("chat %d: update lost (%s), the next one may pass", self.message.chat.id, exc)
        except TelegramAPIError as exc:
            self._stopped = True
            log.info("chat %d: update refused (%s), final text only", self.message.chat.id, exc)
        else:
            self._last_at = now

    async def _update(self, text: str) -> None:
        raise NotImplementedError

    async def _settle(self) -> None:
        """Before the final text: out of a 429's ``retry_after``, which the final must not hit."""
        delay = self._quiet_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class DraftAnswer(_Growing):
    """A private chat: the growing text as a draft (``sendMessageDraft``), then the final ``sendMessage``."""

    def __init__(self, message: Message, send_whole: SendWhole) -> None:
        super().__init__(message)
        self._send_whole = send_whole
        self._draft_id = secrets.randbelow(2**31 - 1) + 1  # one per answer; must be non-zero

    async def _update(self, text: str) -> None:
        assert self.message.bot is not None
        thread = self.message.message_thread_id if self.message.is_topic_message else None
        # The piece being written: the earlier ones go out as messages of their own at the end.
        piece = split_message(text)[-1]
        draft = SendMessageDraft(
            chat_id=self.message.chat.id, draft_id=self._draft_id, text=piece, message_thread_id=thread
        )
        await self.message.bot(draft)

    async def finish(self, text: str) -> Sequence[tuple[int, str]]:
        await self._settle()
        return await self._send_whole(text)


class EditedAnswer(_Growing):
    """A group or topic: a reply once a few words are there, then edits; the last edit is the answer."""

    interval_s = 0.0  # the window's gap, per chat rather than per answer

    def __init__(self, message: Message, send_piece: SendPiece, window: GroupWindow = GROUPS) -> None:
        super().__init__(message)
        self._send_piece = send_piece
        self._window = window
        self._messages: list[tuple[int, str]] = []  # each message sent and the text it shows

    def _ready(self, text: str) -> bool:
        if self._messages or len(text.split()) >= FIRST_WORDS:
            return True
        return time.monotonic() - self._started >= EDIT_INTERVAL_S

    async def _update(self, text: str) -> None:
        chat_id = self.message.chat.id
        for index, piece in enumerate(split_message(text)):
            if index < len(self._messages) and self._messages[index][1] == piece:
                continue
            if not self._window.room(chat_id, keep=1):  # one left for the final text
                return
            self._window.note(chat_id)
            await self._put(index, piece)

    async def _put(self, index: int, piece: str) -> None:
        """Piece ``index`` of the answer on screen: a new reply, or an edit of the one there."""
        if index >= len(self._messages):
            sent = await self._send_piece(piece)
            self._messages.append((sent.message_id, piece))
            return
        assert self.message.bot is not None
        message_id = self._messages[index][0]
        await self.message.bot.edit_message_text(
            text=piece, chat_id=self.message.chat.id, message_id=message_id, parse_mode=None
        )
        self._messages[index] = (message_id, piece)

    async def finish(self, text: str) -> Sequence[tuple[int, str]]:
        await self._settle()
        pieces = split_message(text)
        for index, piece in enumerate(pieces):
            if index < len(self._messages) and self._messages[index][1] == piece:
                continue
            await self._window.wait(self.message.chat.id)
            await self._put(index, piece)
        return self._messages[: len(pieces)]
