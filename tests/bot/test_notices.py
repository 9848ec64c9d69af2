"""The database-outage apology: only where the bot would have answered, as a reply in the topic.

The updates are Telegram's raw JSON (they could not be stored, so they never
reach the dispatcher); the routers' rules decide through ``WouldAnswer``, the
Bot API session is the mocked boundary.
"""

from __future__ import annotations

from typing import Any

from bot.core import texts
from bot.core.i18n import build_i18n, translator
from bot.intake.notices import Apologies
from bot.settings import Settings
from bot.telegram.answerable import WouldAnswer
from tests.bot.group_updates import GROUP, OTHER_GROUP, bot_message, mention, message, person, update
from tests.bot.mocked_bot import MockedBot

ALICE, BOB = person(601), person(602, "en")
STICKER = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1}
STICKER |= {"is_animated": False, "is_video": False}


def raw(content: dict[str, Any]) -> dict[str, Any]:
    return {"update_id": update(content).update_id, "message": content}


def apologies(bot: MockedBot, **settings: Any) -> Apologies:
    config = Settings(**settings)
    return Apologies(bot, translator(build_i18n(), config.bot_language), WouldAnswer(config, bot))


async def test_only_messages_the_bot_would_answer_get_the_apology() -> None:
    bot = MockedBot()
    text, entities = mention("ты тут?")
    called = message(GROUP, ALICE, text, entities=entities, message_thread_id=9, is_topic_message=True)
    reply_to_bot = message(GROUP, BOB, "а ты?", reply_to=bot_message(GROUP, 5, "ответ"))
    private = message(602, BOB, "hello")
    chatter = message(GROUP, ALICE, "просто болтаем")
    people = message(GROUP, BOB, "согласен", reply_to=message(GROUP, ALICE, "пошли обедать"))
    updates = [raw(m) for m in (called, chatter, reply_to_bot, people, private)]
    told = apologies(bot)
    await told.database_unavailable(updates)
    sent = bot.mocked.sent()
    assert [(m.chat_id, m.reply_parameters.message_id) for m in sent] == [
        (GROUP, called["message_id"]),
        (GROUP, reply_to_bot["message_id"]),
        (602, private["message_id"]),
    ]
    assert all(m.reply_parameters.allow_sending_without_reply for m in sent)
    assert [m.message_thread_id for m in sent] == [9, None, None]
    translated = translator(build_i18n(), None)(texts.DATABASE_UNAVAILABLE, "en")
    assert [m.text for m in sent] == [texts.DATABASE_UNAVAILABLE, translated, translated]

    # Storing is retried: the same updates are not apologised for twice.
    await told.database_unavailable(updates)
    assert len(bot.mocked.sent()) == 3


async def test_chats_and_users_outside_the_allow_lists_hear_nothing() -> None:
    bot = MockedBot()
    text, entities = mention("ты тут?")
    elsewhere = message(OTHER_GROUP, ALICE, text, entities=entities)
    here = message(GROUP, ALICE, text, entities=entities)
    await apologies(bot, allowed_chat_ids=[GROUP]).database_unavailable([raw(elsewhere), raw(here)])
    assert [m.chat_id for m in bot.mocked.sent()] == [GROUP]

    bot = MockedBot()
    await apologies(bot, allowed_user_ids=[602]).database_unavailable(
        [raw(message(601, ALICE, "привет")), raw(message(602, BOB, "hi"))]
    )
    assert [m.chat_id for m in bot.mocked.sent()] == [602]


async def test_group_reply_mode_decides_as_it_does_for_stored_updates() -> None:
    bot = MockedBot()
    chatter = message(GROUP, ALICE, "просто болтаем")
    sticker = message(GROUP, ALICE, sticker=STICKER)
    await apologies(bot, group_reply_mode="all").database_unavailable([raw(chatter), raw(sticker)])
    assert [m.reply_parameters.message_id for m in bot.mocked.sent()] == [chatter["message_id"]]
    bot = MockedBot()
    text, entities = mention("эй")
    command = message(GROUP, ALICE, "/help")
    await apologies(bot, group_reply_mode="off").database_unavailable(
        [raw(message(GROUP, ALICE, text, entities=entities)), raw(command)]
    )
    assert [m.reply_parameters.message_id for m in bot.mocked.sent()] == [command["message_id"]]
