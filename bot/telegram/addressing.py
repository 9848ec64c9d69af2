"""Reading a group message: is it for the bot, which message does it reply to, the query without the mention.

Pure functions of the message and the bot's own user (``await bot.me()``,
fetched once by aiogram and cached); :mod:`bot.telegram.filters` builds the router
filters from them.
"""

from __future__ import annotations

from aiogram.enums import ChatType, ContentType
from aiogram.types import Message, MessageEntity, User

from bot.storage.scope import sender_id

# What people send. Every other content type is a service message: joins,
# leaves, pins, title and photo changes, topics, video chats, payments, ...
CONTENT_TYPES = frozenset(
    {
        ContentType.TEXT,
        ContentType.VOICE,
        ContentType.AUDIO,
        ContentType.ANIMATION,
        ContentType.DOCUMENT,
        ContentType.PHOTO,
        ContentType.LIVE_PHOTO,
        ContentType.PAID_MEDIA,
        ContentType.STICKER,
        ContentType.STORY,
        ContentType.VIDEO,
        ContentType.VIDEO_NOTE,
        ContentType.CHECKLIST,
        ContentType.CONTACT,
        ContentType.DICE,
        ContentType.GAME,
        ContentType.POLL,
        ContentType.VENUE,
        ContentType.LOCATION,
    }
)
GROUP_TYPES = frozenset({ChatType.GROUP, ChatType.SUPERGROUP})


def is_service(message: Message) -> bool:
    return message.content_type not in CONTENT_TYPES


def in_group(message: Message) -> bool:
    return message.chat.type in GROUP_TYPES


def command_target(message: Message) -> str | None:
    """For a command, the bot name after "@" ("" when there is none); None for anything else."""
    text = message.text or ""
    entities = message.entities or ()
    if not text.startswith("/") or not any(e.type == "bot_command" and e.offset == 0 for e in entities):
        return None
    command = text.split(maxsplit=1)[0]
    return command.partition("@")[2]


def is_command_for(message: Message, me: User) -> bool:
    target = command_target(message)
    return target is not None and (target == "" or target.lower() == (me.username or "").lower())


def is_command_for_another_bot(message: Message, me: User) -> bool:
    target = command_target(message)
    return bool(target) and target is not None and target.lower() != (me.username or "").lower()


def replied_message(message: Message) -> Message | None:
    """The message this one replies to; None for a plain message.

    In a forum topic every message "replies" to the topic's first (service)
    message; that is where it was posted, not what it answers.
    """
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    if message.is_topic_message and replied.message_id == message.message_thread_id:
        return None
    return replied


def is_reply_to(message: Message, me: User) -> bool:
    replied = replied_message(message)
    return replied is not None and replied.from_user is not None and replied.from_user.id == me.id


def _entities(message: Message) -> tuple[str, list[MessageEntity]]:
    if message.text is not None:
        return message.text, list(message.entities or ())
    return message.caption or "", list(message.caption_entities or ())


def bot_mentions(message: Message, me: User) -> list[MessageEntity]:
    """The entities naming the bot: "@username" or a text_mention of its user."""
    text, entities = _entities(message)
    username = f"@{me.username}".lower() if me.username else None
    found = []
    for entity in entities:
        if entity.type == "mention" and username and entity.extract_from(text).lower() == username:
            found.append(entity)
        elif entity.type == "text_mention" and entity.user is not None and entity.user.id == me.id:
            found.append(entity)
    return found


def is_addressed(message: Message, me: User) -> bool:
    """Private chat, a mention, a reply to the bot or a command for it."""
    if not in_group(message):
        return True
    return bool(bot_mentions(message, me)) or is_reply_to(message, me) or is_command_for(message, me)


def is_reply_between_others(message: Message, me: User) -> bool:
    """A group reply to someone else's message that does not call the bot."""
    replied = replied_message(message)
    if not in_group(message) or replied is None or is_reply_to(message, me):
        return False
    if bot_mentions(message, me) or is_command_for(message, me):
        return False
    return sender_id(replied) != sender_id(message)


def without_bot_mentions(message: Message, me: User) -> str:
    """The text (or caption) with the bot's mentions cut out; offsets are in UTF-16 units."""
    text, _ = _entities(message)
    mentions = bot_mentions(message, me)
    if not mentions:
        return text
    encoded = text.encode("utf-16-le")
    kept, position = [], 0
    for entity in sorted(mentions, key=lambda e: e.offset):
        kept.append(encoded[position * 2 : entity.offset * 2])
        position = entity.offset + entity.length
    kept.append(encoded[position * 2 :])
    # "@bot, как дела?" → "как дела?": the punctuation that went with the address goes too.
    return b"".join(kept).decode("utf-16-le").strip(" \t\n,:;")
