"""/settings through a real Dispatcher: the keyboard, who may press it, and what a press changes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import URL

from bot.core import texts
from bot.settings import Settings
from bot.storage.chat_settings import ChatSettings
from tests.bot.group_updates import ANONYMOUS_ADMIN, GROUP, OTHER_GROUP, mention, message, person, update
from tests.bot.settings_updates import buttons, press
from tests.bot.test_handlers import Harness, make_harness

ADMIN, MEMBER = person(601), person(602)


@pytest.fixture
async def group(pg_database: URL) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database, corpus_secret="corpus-secret"):
        h.bot.mocked.admins.add((GROUP, 601))
        yield h


def answered_callbacks(h: Harness) -> list[tuple[str | None, bool | None]]:
    return [(r.text, r.show_alert) for r in h.bot.mocked.sent("answerCallbackQuery")]


async def test_admin_gets_the_keyboard_and_others_one_line(group: Harness) -> None:
    assert await group.send(update(message(GROUP, ADMIN, "/settings"))) == [texts.SETTINGS_GROUP]
    keyboard = buttons(group.bot.mocked.sent()[-1].reply_markup)
    assert keyboard == [
        ["✓ по упоминанию", "на всё", "только команды"],
        ["✓ язык: авто", "русский", "английский"],
        ["✓ не учиться", "учиться на переписке"],
        ["удалить собранное здесь"],
    ]
    assert await group.send(update(message(GROUP, MEMBER, "/settings"))) == [texts.SETTINGS_ADMINS_ONLY]
    assert group.bot.mocked.sent()[-1].reply_markup is None
    # Asked once per person, then remembered.
    await group.send(update(message(GROUP, ADMIN, "/settings")))
    assert [r.user_id for r in group.bot.mocked.sent("getChatMember")] == [601, 602]


async def test_anonymous_admin_is_an_admin_without_asking(group: Harness) -> None:
    anonymous = message(GROUP, ANONYMOUS_ADMIN, "/settings", sender_chat={"id": GROUP, "type": "supergroup"})
    assert await group.send(update(anonymous)) == [texts.SETTINGS_GROUP]
    assert group.bot.mocked.sent("getChatMember") == []


async def test_reply_mode_press_applies_to_the_next_message_in_that_chat_only(group: Harness) -> None:
    assert await group.send(update(message(GROUP, MEMBER, "просто болтаем"))) == []
    await group.send(press(GROUP, ADMIN, "cfg:mode:all"))
    assert answered_callbacks(group) == [(texts.SETTINGS_SAVED, None)]
    [redrawn] = group.bot.mocked.sent("editMessageReplyMarkup")
    assert buttons(redrawn.reply_markup)[0] == ["по упоминанию", "✓ на всё", "только команды"]
    assert await group.send(update(message(GROUP, MEMBER, "просто болтаем"))) == ["ответ на: просто болтаем"]
    assert await group.send(update(message(OTHER_GROUP, MEMBER, "а тут?"))) == []  # GROUP_REPLY_MODE


async def test_settings_handed_in_with_the_update_are_the_ones_that_apply(group: Harness) -> None:
    """The inbox reads the chat's row with the update (bot/intake/serve.py): no read of its own here."""
    chatter = update(message(GROUP, MEMBER, "просто болтаем"))
    before = len(group.bot.mocked.sent())
    await group.dp.feed_update(group.bot, chatter, chat_settings=ChatSettings("all", None, learning=False))
    assert [m.text for m in group.bot.mocked.sent()[before:]] == ["ответ на: просто болтаем"]
    assert await group.send(update(message(GROUP, MEMBER, "просто болтаем"))) == []  # its row: none


async def test_a_press_applies_on_every_replica(pg_database: URL) -> None:
    """Two dispatchers on one database, as two webhook replicas: the second reads the first's change."""
    async for first in make_harness(pg_database):
        async for second in make_harness(pg_database):
            first.bot.mocked.admins.add((GROUP, 601))
            text, entities = mention("привет")
            assert await second.send(update(message(GROUP, MEMBER, text, entities=entities))) == [
                "ответ на: привет"
            ]
            await first.send(press(GROUP, ADMIN, "cfg:mode:off"))
            assert await second.send(update(message(GROUP, MEMBER, text, entities=entities))) == []
            assert await second.send(update(message(GROUP, MEMBER, "/start"))) == [texts.START_GROUP]


async def test_a_non_admin_press_is_refused_and_changes_nothing(group: Harness) -> None:
    await group.send(press(GROUP, MEMBER, "cfg:mode:all"))
    assert answered_callbacks(group) == [(texts.SETTINGS_ADMINS_ONLY, True)]
    assert group.bot.mocked.sent("editMessageReplyMarkup") == []
    assert await group.send(update(message(GROUP, MEMBER, "просто болтаем"))) == []


async def test_chat_language_wins_over_each_users_language_code(group: Harness) -> None:
    await group.send(press(GROUP, ADMIN, "cfg:language:en"))
    russian = person(603, language="ru")
    [hint] = await group.send(update(message(GROUP, russian, "/nope@test_bot")))
    assert hint == "I do not know that command. /help lists the commands."
    await group.send(press(GROUP, ADMIN, "cfg:language:auto"))
    assert await group.send(update(message(GROUP, russian, "/nope@test_bot"))) == [texts.UNKNOWN_COMMAND]


async def test_private_settings_offer_the_language_only(group: Harness) -> None:
    me = person(604)
    assert await group.send(update(message(604, me, "/settings"))) == [texts.SETTINGS_PRIVATE]
    assert buttons(group.bot.mocked.sent()[-1].reply_markup) == [["✓ язык: авто", "русский", "английский"]]
    await group.send(press(604, me, "cfg:mode:all"))  # not offered here: ignored
    await group.send(press(604, me, "cfg:language:en"))
    [start] = await group.send(update(message(604, me, "/start")))
    assert start.startswith("Hi! I am a chat bot.")
    assert group.bot.mocked.sent("getChatMember") == []


async def test_learning_cannot_be_turned_on_without_a_corpus_secret(pg_database: URL) -> None:
    async for h in make_harness(pg_database):
        h.bot.mocked.admins.add((GROUP, 601))
        await h.send(press(GROUP, ADMIN, "cfg:learning:on"))
        assert answered_callbacks(h) == [(texts.LEARNING_NEEDS_SECRET, True)]
        assert h.bot.mocked.sent_texts() == []  # no announcement


def test_learning_default_on_needs_a_corpus_secret() -> None:
    with pytest.raises(ValidationError, match="LEARNING_DEFAULT=on needs CORPUS_SECRET"):
        Settings(learning_default="on")  # type: ignore[arg-type]
    assert Settings(learning_default="on", corpus_secret="s").learning_default is True  # type: ignore[arg-type]
