"""Edited messages through a real Dispatcher: the latest query is answered again, older edits get nothing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.types import Update
from sqlalchemy.engine import URL

from bot.core import texts
from bot.storage.context_store import StoredQuery
from bot.storage.scope import Scope
from dialogue.format import Turn
from tests.bot.group_updates import GROUP, mention, message, person, update
from tests.bot.test_handlers import Harness, make_harness

ALICE = person(501)
ME = Scope(501, 501)
_update_ids = itertools.count(10_000)


@pytest.fixture
async def h(pg_database: URL) -> AsyncIterator[Harness]:
    async for harness in make_harness(pg_database):
        yield harness


def edited(sent: dict[str, Any], text: str, entities: list[dict[str, Any]] | None = None) -> Update:
    """The update Telegram sends when ``sent`` is edited to ``text``."""
    content = {**sent, "text": text, "edit_date": sent["date"] + 5}
    content.pop("entities", None)
    if entities:
        content["entities"] = entities
    return Update.model_validate({"update_id": next(_update_ids), "edited_message": content})


def said(h: Harness, text: str, chat_id: int = 501, **fields: Any) -> dict[str, Any]:
    return message(chat_id, ALICE, text, message_id=h.bot.mocked.next_message_id(), **fields)


async def test_an_edit_of_the_latest_query_is_answered_again_and_replaces_the_exchange(h: Harness) -> None:
    assert "edited_message" in h.dp.resolve_used_update_types()  # Telegram is asked for edits
    await h.send(update(said(h, "про кошек")))
    typo = said(h, "превет")
    await h.send(update(typo))
    old_answer = h.bot.mocked.sent_message_ids[-1]

    assert await h.send(edited(typo, "привет")) == ["ответ на: привет"]
    # Asked as if the typo had never been sent: what is stored before it (CONTEXT_SIZE=3 kept
    # only the answer of the first exchange).
    assert h.model.requests[-1] == {
        "query": "привет",
        "context": [{"role": "bot", "text": "ответ на: про кошек"}],
    }
    assert await h.store.get(ME) == [
        Turn("bot", "ответ на: про кошек"),
        Turn("user", "привет"),
        Turn("bot", "ответ на: привет"),
    ]
    # The reply chains follow: the query has its new text, the old answer is gone.
    new_answer = h.bot.mocked.sent_message_ids[-1]
    assert [m.text for _, m in await h.store.chain(501, new_answer, 5)] == ["ответ на: привет", "привет"]
    assert await h.store.chain(501, old_answer, 5) == []
    # Edited once more: the same message is still the latest query.
    assert await h.send(edited(typo, "привет!")) == ["ответ на: привет!"]
    assert (await h.store.get(ME))[-2:] == [Turn("user", "привет!"), Turn("bot", "ответ на: привет!")]


async def test_an_edit_of_an_older_message_gets_nothing_and_changes_nothing(h: Harness) -> None:
    first = said(h, "про кошек")
    await h.send(update(first))
    await h.send(update(said(h, "про собак")))
    before, asked = await h.store.get(ME), len(h.model.requests)

    assert await h.send(edited(first, "про тигров")) == []
    assert len(h.model.requests) == asked
    assert await h.store.get(ME) == before
    [latest] = await h.store.latest_queries(ME, 1)
    assert latest.text == "про собак"


async def test_an_edit_that_leaves_the_query_as_it_was_is_not_answered_again(h: Harness) -> None:
    sent = said(h, "привет")
    await h.send(update(sent))
    assert await h.send(edited(sent, "привет\n")) == []  # the same query once normalised
    assert len(h.model.requests) == 1


async def test_an_edit_after_the_fallback_line_replaces_the_unanswered_query(h: Harness) -> None:
    await h.send(update(said(h, "про кошек")))
    h.model.mode = "empty"
    sent = said(h, "ммм")
    assert await h.send(update(sent)) == [texts.FALLBACK_ANSWER]
    h.model.mode = "ok"
    assert await h.send(edited(sent, "как дела?")) == ["ответ на: как дела?"]
    assert await h.store.get(ME) == [
        Turn("bot", "ответ на: про кошек"),
        Turn("user", "как дела?"),
        Turn("bot", "ответ на: как дела?"),
    ]
    assert await h.store.latest_queries(ME, 1) == [StoredQuery(sent["message_id"], "как дела?", True)]


async def test_a_group_edit_is_answered_as_a_reply_and_must_still_call_the_bot(h: Harness) -> None:
    text, entities = mention("превет")
    asked = said(h, text, chat_id=GROUP, entities=entities)
    await h.send(update(asked))
    text, entities = mention("привет")
    assert await h.send(edited(asked, text, entities)) == ["ответ на: привет"]
    assert h.bot.mocked.sent()[-1].reply_parameters.message_id == asked["message_id"]
    assert await h.store.get(Scope(GROUP, 501)) == [Turn("user", "привет"), Turn("bot", "ответ на: привет")]
    # Edited into a message for someone else (no mention any more): not the bot's business.
    assert await h.send(edited(asked, "привет всем")) == []
