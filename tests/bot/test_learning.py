"""Learning from a group through a real Dispatcher: consent, what is kept, anonymised, and deleted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL

from bot.core import texts
from bot.core.speech import FasterWhisperRecognizer
from bot.storage.corpus import author_key
from bot.storage.retention import RetentionPurge
from tests.bot.group_updates import GROUP, OTHER_GROUP, bot_message, message, person, update
from tests.bot.settings_updates import press
from tests.bot.test_handlers import Harness, make_harness

SECRET = "corpus-secret"
ADMIN = person(601)
ALICE = {"id": 611, "is_bot": False, "first_name": "Анна", "last_name": "Смирнова", "username": "anna_s"}
BOB = {"id": 612, "is_bot": False, "first_name": "Борис"}


@pytest.fixture
async def group(pg_database: URL) -> AsyncIterator[Harness]:
    async for h in make_harness(pg_database, corpus_secret=SECRET, corpus_retention_days=90):
        h.bot.mocked.admins.update({(GROUP, 601), (OTHER_GROUP, 601)})
        yield h


async def corpus(h: Harness) -> list[Any]:
    async with h.store.engine.connect() as connection:
        statement = "SELECT * FROM corpus_message ORDER BY chat_id, message_id"
        return list((await connection.execute(text(statement))).all())


async def learn(h: Harness, chat_id: int = GROUP) -> None:
    await h.send(press(chat_id, ADMIN, "cfg:learning:on"))


async def test_nothing_is_collected_until_an_admin_turns_learning_on(group: Harness) -> None:
    await group.send(update(message(GROUP, ALICE, "привет всем")))
    assert await corpus(group) == []
    await learn(group)
    [announcement] = group.bot.mocked.sent_texts(GROUP)
    assert "90 дн." in announcement and "/optout" in announcement and "/forget" in announcement
    await learn(group)  # already on: no second announcement
    assert len(group.bot.mocked.sent_texts(GROUP)) == 1


async def test_every_group_message_is_kept_anonymised_with_its_reply(group: Harness) -> None:
    await learn(group)
    await group.send(update(message(GROUP, BOB, "всем привет")))  # the bot has now seen Борис
    first = message(GROUP, ALICE, "Борис, позвони мне: +7 912 345-67-89 или anna@example.com")
    await group.send(update(first))
    # Not addressed to the bot, so not answered, but kept; Bob's reply names Анна in another case.
    reply = message(GROUP, BOB, "Анне сейчас некогда, напишу Смирновой на t.me/anna", reply_to=first)
    assert await group.send(update(reply)) == []
    await group.send(update(message(GROUP, BOB, "/help@test_bot")))  # a command: not chat
    [hello, one, two] = await corpus(group)
    assert hello.text == "всем привет"
    assert one.text == "[NAME], позвони мне: [PHONE] или [EMAIL]"
    assert two.text == "[NAME] сейчас некогда, напишу [NAME] на [URL]"
    assert (two.message_id, two.reply_to_message_id) == (reply["message_id"], first["message_id"])
    assert one.author_key == author_key(SECRET, 611) and two.author_key == author_key(SECRET, 612)
    assert "611" not in one.author_key and one.sent_at.timestamp() == first["date"]


async def test_private_chats_and_other_groups_are_never_collected(group: Harness) -> None:
    await learn(group)
    assert await group.send(update(message(611, ALICE, "личное"))) == ["ответ на: личное"]
    await group.send(update(message(OTHER_GROUP, ALICE, "тут не учимся")))
    await group.send(update(message(GROUP, ALICE, "@test_bot а тут учимся")))
    assert [row.text for row in await corpus(group)] == ["[MENTION] а тут учимся"]


async def test_optout_deletes_and_stops_collection_everywhere_and_optin_resumes(group: Harness) -> None:
    await learn(group)
    await learn(group, OTHER_GROUP)
    for chat in (GROUP, OTHER_GROUP):
        await group.send(update(message(chat, ALICE, "раз")))
        await group.send(update(message(chat, BOB, "два")))
    assert await group.send(update(message(GROUP, ALICE, "/optout"))) == [texts.OPTED_OUT.format(messages=2)]
    await group.send(update(message(OTHER_GROUP, ALICE, "уже не сохраняй")))
    assert [(r.chat_id, r.text) for r in await corpus(group)] == [(OTHER_GROUP, "два"), (GROUP, "два")]
    assert await group.send(update(message(611, ALICE, "/optin"))) == [texts.OPTED_IN]
    await group.send(update(message(GROUP, ALICE, "снова можно")))
    assert [r.text for r in await corpus(group)][-1] == "снова можно"


async def test_forget_deletes_the_senders_corpus_rows_too(group: Harness) -> None:
    await learn(group)
    await group.send(update(message(GROUP, ALICE, "раз")))
    await group.send(update(message(GROUP, BOB, "два")))
    assert await group.send(update(message(611, ALICE, "/forget"))) == [
        texts.FORGOTTEN.format(conversations=0, messages=1)
    ]
    assert [r.text for r in await corpus(group)] == ["два"]
    await group.send(update(message(GROUP, ALICE, "после forget")))  # /forget is not /optout
    assert [r.text for r in await corpus(group)] == ["два", "после forget"]


async def test_admin_deletes_what_was_collected_in_that_chat(group: Harness) -> None:
    await learn(group)
    await learn(group, OTHER_GROUP)
    await group.send(update(message(GROUP, ALICE, "здесь")))
    await group.send(update(message(OTHER_GROUP, ALICE, "там")))
    await group.send(press(GROUP, BOB, "cfg:delete:chat"))  # not an admin
    assert len(await corpus(group)) == 2
    await group.send(press(GROUP, ADMIN, "cfg:delete:chat"))
    assert group.bot.mocked.sent("answerCallbackQuery")[-1].text == texts.CORPUS_DELETED.format(messages=1)
    assert [r.text for r in await corpus(group)] == ["там"]


async def test_learning_off_stops_collection(group: Harness) -> None:
    await learn(group)
    await group.send(update(message(GROUP, ALICE, "раз")))
    await group.send(press(GROUP, ADMIN, "cfg:learning:off"))
    await group.send(update(message(GROUP, ALICE, "два")))
    assert [r.text for r in await corpus(group)] == ["раз"]


async def test_the_bots_own_messages_are_not_collected(group: Harness) -> None:
    await learn(group)
    await group.send(update(bot_message(GROUP, 5000, "я бот")))
    assert await corpus(group) == []


async def test_corpus_retention_purges_old_messages(group: Harness) -> None:
    await learn(group)
    await group.send(update(message(GROUP, ALICE, "старое", date=1_000_000_000)))  # 2001
    await group.send(update(message(GROUP, ALICE, "новое")))
    learning = group.dp["learning"]
    purge = RetentionPurge(group.store, 0, every_s=0.05, corpus=learning.corpus, corpus_days=90)
    await purge.start()
    for _ in range(100):
        if len(await corpus(group)) == 1:
            break
        await asyncio.sleep(0.05)
    await purge.stop()
    assert [r.text for r in await corpus(group)] == ["новое"]


async def test_a_voice_message_is_kept_as_its_transcript(
    pg_database: URL, recognizer: FasterWhisperRecognizer, russian_voice_ogg: bytes
) -> None:
    async for h in make_harness(
        pg_database, recognizer, corpus_secret=SECRET, group_reply_mode="all", voice_max_seconds=30
    ):
        h.bot.mocked.admins.add((GROUP, 601))
        h.bot.mocked.files["voice/g1"] = russian_voice_ogg
        await learn(h)
        voice = {"file_id": "g1", "file_unique_id": "g1", "duration": 2, "file_size": len(russian_voice_ogg)}
        recognized, _answer = await h.send(update(message(GROUP, ALICE, voice=voice)))
        [row] = await corpus(h)
        assert recognized == texts.RECOGNIZED.format(transcript=row.text)
        assert "погода" in row.text.lower()


async def test_a_chat_outside_allowed_chat_ids_is_never_collected(pg_database: URL) -> None:
    env = {"corpus_secret": SECRET, "learning_default": True, "allowed_chat_ids": [OTHER_GROUP]}
    async for h in make_harness(pg_database, **env):
        await h.send(update(message(GROUP, ALICE, "чужая группа")))
        await h.send(update(message(OTHER_GROUP, ALICE, "наша группа")))
        assert [r.text for r in await corpus(h)] == ["наша группа"]
