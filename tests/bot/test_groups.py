"""Groups through a real Dispatcher: where the bot speaks, reply chains, scopes, topics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

from bot.core import texts
from bot.storage.scope import Scope
from dialogue.format import Turn
from tests.bot.group_updates import (
    ANONYMOUS_ADMIN,
    GROUP,
    OTHER_GROUP,
    bot_message,
    mention,
    message,
    person,
    update,
)
from tests.bot.test_handlers import Harness, make_harness

ALICE, BOB = person(501), person(502)


@pytest.fixture
async def group(pg_database: URL) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database):
        yield h


def last_sent(h: Harness) -> Any:
    return h.bot.mocked.sent()[-1]


def last_bot_message_id(h: Harness) -> int:
    return h.bot.mocked.sent_message_ids[-1]


async def test_mention_is_answered_as_a_reply_without_the_mention(group: Harness) -> None:
    text, entities = mention("как дела?")
    asked = message(GROUP, ALICE, text, entities=entities)
    assert await group.send(update(asked)) == ["ответ на: как дела?"]
    assert group.model.requests[-1] == {"query": "как дела?", "context": []}
    assert last_sent(group).reply_parameters.message_id == asked["message_id"]
    assert await group.store.get(Scope(GROUP, 501)) == [
        Turn("user", "как дела?"),
        Turn("bot", "ответ на: как дела?"),
    ]


async def test_plain_group_message_is_not_answered_in_mention_mode(group: Harness) -> None:
    assert await group.send(update(message(GROUP, ALICE, "просто болтаем"))) == []
    assert group.model.requests == []


async def test_reply_to_the_bot_continues_the_chain(group: Harness) -> None:
    text, entities = mention("привет")
    first = message(GROUP, ALICE, text, entities=entities)
    await group.send(update(first))
    answer = bot_message(GROUP, last_bot_message_id(group), "ответ на: привет")
    # Bob joins Alice's thread by replying to the bot: the chain is his context, not his (empty) history.
    assert await group.send(update(message(GROUP, BOB, "а мне?", reply_to=answer))) == ["ответ на: а мне?"]
    assert group.model.requests[-1]["context"] == [
        {"role": "user", "text": "привет"},  # Alice, two messages back: the other speaker of the format
        {"role": "bot", "text": "ответ на: привет"},
    ]
    second = bot_message(GROUP, last_bot_message_id(group), "ответ на: а мне?")
    # Alice replies to the bot's second answer: her own message in the chain is "user".
    await group.send(update(message(GROUP, ALICE, "и дальше", reply_to=second)))
    assert (
        group.model.requests[-1]["context"]
        == [
            {"role": "user", "text": "привет"},
            {"role": "bot", "text": "ответ на: привет"},
            {"role": "user", "text": "а мне?"},
            {"role": "bot", "text": "ответ на: а мне?"},
        ][-3:]
    )


async def test_reply_between_people_is_ignored_unless_it_calls_the_bot(group: Harness) -> None:
    alices = message(GROUP, ALICE, "кто идёт в кино?")
    assert await group.send(update(message(GROUP, BOB, "я иду", reply_to=alices))) == []
    assert group.model.requests == []
    text, entities = mention("а ты?")
    assert await group.send(update(message(GROUP, BOB, text, entities=entities, reply_to=alices))) == [
        "ответ на: а ты?"
    ]
    # The replied-to message comes from the update; Alice is the other speaker, one message back.
    assert group.model.requests[-1]["context"] == [{"role": "bot", "text": "кто идёт в кино?"}]


@pytest.mark.parametrize("mode", ["mention", "all", "off"])
async def test_commands_for_other_bots_are_ignored_ours_answered(pg_database: URL, mode: str) -> None:
    async for h in make_harness(pg_database, group_reply_mode=mode):
        assert await h.send(update(message(GROUP, ALICE, "/start@other_bot"))) == []
        assert await h.send(update(message(GROUP, ALICE, "/settings@other_bot"))) == []
        assert await h.send(update(message(GROUP, ALICE, "/start@test_bot"))) == [texts.START_GROUP]
        [help_text] = await h.send(update(message(GROUP, ALICE, "/help")))
        assert "/forget" in help_text and "30" in help_text  # retention: 30 days by default
        assert h.model.requests == []


@pytest.mark.parametrize(
    "service",
    [
        {"new_chat_members": [{"id": 503, "is_bot": False, "first_name": "Новый"}]},
        {"left_chat_member": {"id": 503, "is_bot": False, "first_name": "Новый"}},
        {"new_chat_title": "Новое название"},
        {"pinned_message": {"message_id": 1, "date": 0, "chat": {"id": GROUP, "type": "supergroup"}}},
    ],
    ids=["join", "leave", "title", "pin"],
)
@pytest.mark.parametrize("mode", ["mention", "all"])
async def test_service_messages_get_nothing(pg_database: URL, mode: str, service: dict[str, Any]) -> None:
    async for h in make_harness(pg_database, group_reply_mode=mode):
        assert await h.send(update(message(GROUP, ALICE, **service))) == []
        assert h.model.requests == []


async def test_all_mode_answers_every_text_but_not_replies_between_people(pg_database: URL) -> None:
    async for h in make_harness(pg_database, group_reply_mode="all"):
        alices = message(GROUP, ALICE, "всем привет")
        assert await h.send(update(alices)) == ["ответ на: всем привет"]
        assert await h.send(update(message(GROUP, BOB, "и тебе", reply_to=alices))) == []
        sticker = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1}
        sticker |= {"is_animated": False, "is_video": False}
        assert await h.send(update(message(GROUP, BOB, sticker=sticker))) == []  # not addressed: no hint


async def test_off_mode_answers_commands_only(pg_database: URL) -> None:
    async for h in make_harness(pg_database, group_reply_mode="off"):
        text, entities = mention("привет")
        assert await h.send(update(message(GROUP, ALICE, text, entities=entities))) == []
        assert await h.send(update(message(GROUP, ALICE, "/clear_context"))) == [texts.CONTEXT_CLEARED]
        # A private chat is not a group: answered as always.
        assert await h.send(update(message(501, ALICE, "привет"))) == ["ответ на: привет"]


async def test_unsupported_content_gets_a_hint_only_when_addressed(group: Harness) -> None:
    photo = [{"file_id": "p", "file_unique_id": "p", "width": 10, "height": 10}]
    assert await group.send(update(message(GROUP, ALICE, photo=photo))) == []
    text, entities = mention("глянь")
    await group.send(update(message(GROUP, ALICE, text, entities=entities)))
    answer = bot_message(GROUP, last_bot_message_id(group), "ответ на: глянь")
    assert await group.send(update(message(GROUP, ALICE, photo=photo, reply_to=answer))) == [
        texts.UNSUPPORTED_CONTENT
    ]


async def test_anonymous_admins_of_different_groups_do_not_share_a_conversation(group: Harness) -> None:
    text, entities = mention("я админ")
    for chat in (GROUP, OTHER_GROUP):
        sender_chat = {"id": chat, "type": "supergroup", "title": "Группа"}
        anonymous = message(chat, ANONYMOUS_ADMIN, text, entities=entities, sender_chat=sender_chat)
        assert await group.send(update(anonymous)) == ["ответ на: я админ"]
        assert group.model.requests[-1]["context"] == []  # the other group's admin is not here
    assert await group.store.get(Scope(GROUP, GROUP)) == [
        Turn("user", "я админ"),
        Turn("bot", "ответ на: я админ"),
    ]
    assert await group.store.get(Scope(GROUP, 1087968824)) == []


async def test_forum_topic_keeps_its_thread_and_is_no_reply_chain(group: Harness) -> None:
    topic_start = message(GROUP, ALICE, message_id=77, forum_topic_created={"name": "Кино", "icon_color": 1})
    text, entities = mention("что посмотреть?")
    in_topic = message(
        GROUP,
        ALICE,
        text,
        entities=entities,
        reply_to=topic_start,
        message_thread_id=77,
        is_topic_message=True,
    )
    assert await group.send(update(in_topic)) == ["ответ на: что посмотреть?"]
    sent = last_sent(group)
    assert sent.message_thread_id == 77 and sent.reply_parameters.message_id == in_topic["message_id"]
    assert group.model.requests[-1]["context"] == []  # the topic's first message is not what it answers


async def test_private_and_group_conversations_stay_apart(group: Harness) -> None:
    await group.send(update(message(501, ALICE, "мой секрет")))
    text, entities = mention("что ты знаешь?")
    await group.send(update(message(GROUP, ALICE, text, entities=entities)))
    assert group.model.requests[-1]["context"] == []  # the private secret does not reach the group
    await group.send(update(message(501, ALICE, "а здесь?")))
    assert group.model.requests[-1]["context"] == [
        {"role": "user", "text": "мой секрет"},
        {"role": "bot", "text": "ответ на: мой секрет"},
    ]
    assert group.bot.mocked.sent()[-1].reply_parameters is None  # private answers are plain messages
    # /clear_context in the group leaves the private conversation alone.
    await group.send(update(message(GROUP, ALICE, "/clear_context")))
    assert await group.store.get(Scope(501, 501)) != []
