"""What the stored conversation holds after a turn, through a real Dispatcher (issue 21).

The fallback line is never dialogue; a private reply to an older message has
its reply chain as context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.engine import URL

from bot.core import texts
from bot.storage.scope import Scope
from dialogue.format import Turn
from tests.bot.group_updates import GROUP, bot_message, mention, message, person, update
from tests.bot.test_handlers import Harness, make_harness

ALICE = person(501)
ME = Scope(501, 501)


@pytest.fixture
async def h(pg_database: URL) -> AsyncIterator[Harness]:
    async for harness in make_harness(pg_database):
        yield harness


def last_bot_message_id(h: Harness) -> int:
    return h.bot.mocked.sent_message_ids[-1]


async def test_the_fallback_line_is_sent_but_never_stored_as_the_bots_turn(h: Harness) -> None:
    await h.send(update(message(501, ALICE, "привет")))
    h.model.mode = "empty"  # the model server answers ""
    assert await h.send(update(message(501, ALICE, "ммм"))) == [texts.FALLBACK_ANSWER]
    # The user's message stays: it is what they said; the canned line is not the bot's turn.
    assert await h.store.get(ME) == [
        Turn("user", "привет"),
        Turn("bot", "ответ на: привет"),
        Turn("user", "ммм"),
    ]
    h.model.mode = "ok"
    assert await h.send(update(message(501, ALICE, "ну скажи"))) == ["ответ на: ну скажи"]
    context = h.model.requests[-1]["context"]
    assert all(turn["text"] != texts.FALLBACK_ANSWER for turn in context)
    assert context[-1] == {"role": "user", "text": "ммм"}  # merged with the query by the format


async def test_a_group_reply_to_the_fallback_line_does_not_get_it_as_context(h: Harness) -> None:
    h.model.mode = "empty"
    text, entities = mention("ммм")
    assert await h.send(update(message(GROUP, ALICE, text, entities=entities))) == [texts.FALLBACK_ANSWER]
    fallback = bot_message(GROUP, last_bot_message_id(h), texts.FALLBACK_ANSWER)
    h.model.mode = "ok"
    assert await h.send(update(message(GROUP, ALICE, "и что?", reply_to=fallback))) == ["ответ на: и что?"]
    assert h.model.requests[-1]["context"] == []
    assert await h.store.get(Scope(GROUP, 501)) == [
        Turn("user", "ммм"),
        Turn("user", "и что?"),
        Turn("bot", "ответ на: и что?"),
    ]


async def private_exchange(h: Harness, text: str, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send ``text`` in Alice's private chat (ids in one sequence with the bot's); the bot's answer."""
    asked = message(501, ALICE, text, message_id=h.bot.mocked.next_message_id(), reply_to=reply_to)
    [answer] = await h.send(update(asked))
    return bot_message(501, last_bot_message_id(h), answer)


async def test_a_private_reply_to_an_older_answer_has_its_chain_as_context(h: Harness) -> None:
    first = await private_exchange(h, "про кошек")
    await private_exchange(h, "про собак")
    await private_exchange(h, "про птиц")
    await private_exchange(h, "а кошки спят?", reply_to=first)
    assert h.model.requests[-1]["context"] == [
        {"role": "user", "text": "про кошек"},
        {"role": "bot", "text": "ответ на: про кошек"},
    ]


async def test_a_private_reply_to_the_newest_answer_is_the_plain_flow(h: Harness) -> None:
    await private_exchange(h, "про кошек")
    newest = await private_exchange(h, "про собак")
    await private_exchange(h, "а они лают?", reply_to=newest)
    assert h.model.requests[-1]["context"] == [
        {"role": "bot", "text": "ответ на: про кошек"},  # the last CONTEXT_SIZE=3, not the chain
        {"role": "user", "text": "про собак"},
        {"role": "bot", "text": "ответ на: про собак"},
    ]
