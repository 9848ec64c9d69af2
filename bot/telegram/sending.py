"""Sending in Telegram: replies in the message's chat and topic, answers cut to the message limit.

In a group the bot answers as a reply, so that the next reply continues the chain.
"""

from __future__ import annotations

from aiogram.types import Message, ReplyParameters, User
from aiogram.utils.chat_action import ChatActionSender

from bot.core.conversation import Ask, converse
from bot.core.model_client import ModelClient
from bot.core.reply_chain import Replied
from bot.storage.context_store import ContextStore
from bot.storage.scope import scope_of, sender_id
from bot.telegram import addressing
from bot.telegram.streaming import DraftAnswer, EditedAnswer, split_message
from dialogue.format import normalize

# "typing" goes out only when the answer takes longer than this: a quick answer
# needs no indicator, and each action is a Bot API call counted in its limits.
TYPING_AFTER_S = 0.3


def reply_parameters(message: Message) -> ReplyParameters | None:
    """In a group the bot answers as a reply, so that the next reply continues the chain."""
    if not addressing.in_group(message):
        return None
    return ReplyParameters(message_id=message.message_id, allow_sending_without_reply=True)


async def reply(message: Message, text: str, plain: bool = False) -> Message:
    """A reply in the chat (and forum topic) of ``message``; ``plain``: no HTML/Markdown parsing."""
    if plain:
        return await message.answer(text, parse_mode=None, reply_parameters=reply_parameters(message))
    return await message.answer(text, reply_parameters=reply_parameters(message))


def telegram_ask(message: Message, query: str, me: User, edited: bool = False) -> Ask:
    replied = addressing.replied_message(message)
    chain_start = None
    if replied is not None:
        is_bot = replied.from_user is not None and replied.from_user.id == me.id
        chain_start = Replied(
            message_id=replied.message_id,
            role="bot" if is_bot else "user",
            text=normalize(addressing.without_bot_mentions(replied, me)),
            sender_id=sender_id(replied) or 0,
        )
    group = addressing.in_group(message)
    return Ask(scope_of(message), query, message.message_id, chain_start, group=group, edited=edited)


async def answer_and_remember(
    message: Message,
    query: str,
    store: ContextStore,
    model: ModelClient,
    me: User,
    edited: bool = False,
    stream: bool = False,
) -> None:
    """Answer ``message`` and remember the exchange.

    ``edited``: a new version of it (docs/groups.md); ``stream``: the answer
    grows on screen (bot/telegram/streaming.py).
    """
    assert message.bot is not None
    bot, chat_id, thread_id = message.bot, message.chat.id, message.message_thread_id

    async def send_answer(answer: str) -> list[tuple[int, str]]:
        # Model output is plain text: no HTML/Markdown parsing of what it wrote.
        pieces = split_message(answer)
        return [((await reply(message, piece, plain=True)).message_id, piece) for piece in pieces]

    def growing() -> DraftAnswer | EditedAnswer:
        # Drafts exist in private chats only.
        if addressing.in_group(message):
            return EditedAnswer(message, lambda piece: reply(message, piece, plain=True))
        return DraftAnswer(message, send_answer)

    await converse(
        telegram_ask(message, query, me, edited),
        store,
        model,
        send_answer=send_answer,
        send_notice=lambda text: reply(message, text),
        waiting=lambda: ChatActionSender.typing(
            bot=bot,
            chat_id=chat_id,
            message_thread_id=thread_id if message.is_topic_message else None,
            initial_sleep=TYPING_AFTER_S,
        ),
        stream=growing if stream else None,
    )
