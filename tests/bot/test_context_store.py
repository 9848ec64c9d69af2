from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage.context_store import ChainMessage, ContextStore
from bot.storage.scope import Scope
from dialogue.format import Turn


def private(user_id: int) -> Scope:
    return Scope(user_id, user_id)


async def stored_row(engine: AsyncEngine, user_id: int) -> list[dict[str, str]] | None:
    async with engine.connect() as connection:
        value = (
            await connection.execute(
                text("SELECT context FROM user_context WHERE chat_id = :u AND user_id = :u"), {"u": user_id}
            )
        ).scalar_one_or_none()
    return json.loads(value) if isinstance(value, str) else value


async def test_new_user_has_empty_context(migrated_engine: AsyncEngine) -> None:
    assert await ContextStore(migrated_engine, 3).get(private(42)) == []


async def test_append_keeps_last_context_size_messages_oldest_first(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(private(7), "привет", "здравствуй")
    assert await store.get(private(7)) == [Turn("user", "привет"), Turn("bot", "здравствуй")]

    await store.append_exchange(private(7), "как дела?", "хорошо")
    assert await store.get(private(7)) == [
        Turn("bot", "здравствуй"),
        Turn("user", "как дела?"),
        Turn("bot", "хорошо"),
    ]
    assert await stored_row(migrated_engine, 7) == [
        {"role": "bot", "text": "здравствуй"},
        {"role": "user", "text": "как дела?"},
        {"role": "bot", "text": "хорошо"},
    ]


async def test_users_do_not_share_context(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(private(1), "a", "b")
    await store.append_exchange(private(2), "c", "d")
    assert await store.get(private(1)) == [Turn("user", "a"), Turn("bot", "b")]
    assert await store.get(private(2)) == [Turn("user", "c"), Turn("bot", "d")]


@pytest.mark.parametrize("size", [1, 2, 5])
async def test_other_context_sizes(migrated_engine: AsyncEngine, size: int) -> None:
    store = ContextStore(migrated_engine, size)
    history: list[Turn] = []
    for i in range(4):
        await store.append_exchange(private(9), f"u{i}", f"b{i}")
        history += [Turn("user", f"u{i}"), Turn("bot", f"b{i}")]
        assert await store.get(private(9)) == history[-size:]


async def test_clear_forgets_and_works_for_unknown_user(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.clear(private(12345))  # never wrote before
    await store.append_exchange(private(5), "x", "y")
    await store.clear(private(5))
    assert await store.get(private(5)) == []
    await store.append_exchange(private(5), "снова", "да")
    assert await store.get(private(5)) == [Turn("user", "снова"), Turn("bot", "да")]


async def test_texts_survive_unicode_quotes_and_big_ids(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    user_id = 2**62  # Telegram ids exceed 32 bits
    odd = "кавычки \"двойные\" \\ обратный слеш, emoji 🙂, 'одинарные'"
    await store.append_exchange(private(user_id), odd, "ок")
    assert await store.get(private(user_id)) == [Turn("user", odd), Turn("bot", "ок")]


async def test_concurrent_appends_of_one_user_lose_nothing(migrated_engine: AsyncEngine) -> None:
    n = 50
    store = ContextStore(migrated_engine, 2 * n)  # room for everything: nothing may be lost
    await asyncio.gather(*(store.append_exchange(private(3), f"q{i}", f"a{i}") for i in range(n)))
    context = await store.get(private(3))
    assert len(context) == 2 * n
    # Exchanges stay whole (question right before its answer), each exactly once.
    pairs = [(context[k], context[k + 1]) for k in range(0, 2 * n, 2)]
    assert all(q == Turn("user", f"q{q.text[1:]}") and a == Turn("bot", f"a{q.text[1:]}") for q, a in pairs)
    assert sorted(int(q.text[1:]) for q, _ in pairs) == list(range(n))


async def test_concurrent_appends_trim_to_a_well_formed_tail(migrated_engine: AsyncEngine) -> None:
    n = 50
    store = ContextStore(migrated_engine, 3)
    await asyncio.gather(*(store.append_exchange(private(4), f"q{i}", f"a{i}") for i in range(n)))
    context = await store.get(private(4))
    assert [t.role for t in context] == ["bot", "user", "bot"]
    assert context[2].text == "a" + context[1].text[1:]
    assert context[0].text != context[2].text
    row = await stored_row(migrated_engine, 4)
    assert row is not None and len(row) == 3 and all(set(item) == {"role", "text"} for item in row)


async def test_same_query_message_is_stored_once(migrated_engine: AsyncEngine) -> None:
    """Delivery may answer a message twice after a crash: the second store changes nothing."""
    store = ContextStore(migrated_engine, 3)
    group = Scope(-100, 7)
    first = await store.append_exchange(
        group, "привет", "здравствуй", query_message_id=10, answer_pieces=[(11, "здравствуй")]
    )
    again = await store.append_exchange(
        group, "привет", "другой ответ", query_message_id=10, answer_pieces=[(12, "другой ответ")]
    )
    assert (first, again) == (True, False)
    assert await store.get(group) == [Turn("user", "привет"), Turn("bot", "здравствуй")]
    assert await store.chain(-100, 12, 5) == []  # the second answer's message was not stored either
    # At once, as two replicas would: still exactly one exchange.
    results = await asyncio.gather(
        *(
            store.append_exchange(
                group, "ещё", f"ответ {i}", query_message_id=20, answer_pieces=[(30 + i, "x")]
            )
            for i in range(8)
        )
    )
    assert sorted(results) == [False] * 7 + [True]
    context = await store.get(group)
    assert [t.text for t in context][-2:-1] == ["ещё"] and context.count(Turn("user", "ещё")) == 1


async def test_chain_follows_replies_newest_first(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(
        Scope(-5, 1), "первый", "ответ 1", query_message_id=1, answer_pieces=[(2, "ответ 1")]
    )
    await store.append_exchange(
        Scope(-5, 3),
        "второй",
        "ответ 2",
        query_message_id=4,
        reply_to_message_id=2,
        answer_pieces=[(5, "ответ 2")],
    )
    assert await store.chain(-5, 5, 10) == [
        (5, ChainMessage("bot", "ответ 2", 3)),
        (4, ChainMessage("user", "второй", 3)),
        (2, ChainMessage("bot", "ответ 1", 1)),
        (1, ChainMessage("user", "первый", 1)),
    ]
    assert [i for i, _ in await store.chain(-5, 5, 2)] == [5, 4]
    assert await store.chain(-6, 5, 10) == []  # another chat's message 5 is another message


async def test_conversations_are_per_chat_and_sender(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(Scope(1, 1), "лично", "ок")
    await store.append_exchange(Scope(-100, 1), "в группе", "ок")
    await store.append_exchange(Scope(-200, 1), "в другой группе", "ок")
    assert await store.get(Scope(-100, 1)) == [Turn("user", "в группе"), Turn("bot", "ок")]
    assert await store.get(Scope(-100, 2)) == []
    await store.append_exchange(Scope(-100, 2), "другой", "ок", query_message_id=8, answer_pieces=[(9, "ок")])
    await store.append_exchange(Scope(-100, 1), "ещё", "да", query_message_id=5, answer_pieces=[(6, "да")])
    await store.clear(Scope(-100, 1))
    assert await store.get(Scope(-100, 1)) == []
    assert await store.chain(-100, 6, 5) == []  # its chain messages go with it
    assert len(await store.chain(-100, 9, 5)) == 2  # another sender's stay
    assert await store.get(Scope(1, 1)) == [Turn("user", "лично"), Turn("bot", "ок")]


async def test_forget_sender_deletes_every_chat_and_reports(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(Scope(7, 7), "лично", "ок", query_message_id=1, answer_pieces=[(2, "ок")])
    await store.append_exchange(Scope(-1, 7), "группа", "да", query_message_id=1, answer_pieces=[(2, "да")])
    await store.append_exchange(Scope(-1, 8), "чужое", "нет", query_message_id=3, answer_pieces=[(4, "нет")])
    forgotten = await store.forget_sender(7)
    assert (forgotten.conversations, forgotten.messages) == (2, 4)
    assert await store.get(Scope(7, 7)) == [] and await store.get(Scope(-1, 7)) == []
    assert await store.chain(-1, 2, 5) == [] and await store.chain(7, 2, 5) == []
    assert await store.get(Scope(-1, 8)) == [Turn("user", "чужое"), Turn("bot", "нет")]


async def test_purge_deletes_only_old_rows(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(Scope(1, 1), "старое", "ок", query_message_id=1, answer_pieces=[(2, "ок")])
    await store.append_exchange(Scope(2, 2), "новое", "ок", query_message_id=1, answer_pieces=[(2, "ок")])
    old = "'2000-01-01 00:00:00'"  # a literal both databases read as a timestamp
    async with migrated_engine.begin() as connection:
        await connection.execute(text(f"UPDATE user_context SET updated_at = {old} WHERE user_id = 1"))
        await connection.execute(text(f"UPDATE chain_message SET created_at = {old} WHERE chat_id = 1"))
    assert await store.purge_older_than(30) == 3
    assert await store.get(Scope(1, 1)) == [] and await store.chain(1, 2, 5) == []
    assert await store.get(Scope(2, 2)) == [Turn("user", "новое"), Turn("bot", "ок")]
    assert len(await store.chain(2, 2, 5)) == 2


async def test_the_periodic_purge_runs_until_stopped(migrated_engine: AsyncEngine) -> None:
    from bot.storage.retention import RetentionPurge

    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(Scope(1, 1), "старое", "ок")
    async with migrated_engine.begin() as connection:
        await connection.execute(text("UPDATE user_context SET updated_at = '2000-01-01 00:00:00'"))
    purge = RetentionPurge(store, days=30, every_s=0.05)
    await purge.start()
    for _ in range(100):
        if await store.get(Scope(1, 1)) == []:
            break
        await asyncio.sleep(0.05)
    await purge.stop()
    assert await store.get(Scope(1, 1)) == []
    await store.append_exchange(Scope(1, 1), "новое", "ок")
    await asyncio.sleep(0.2)  # stopped: nothing purges any more (and the row is new anyway)
    assert await store.get(Scope(1, 1)) == [Turn("user", "новое"), Turn("bot", "ок")]


async def test_latest_queries_are_newest_first_and_know_the_fallback(migrated_engine: AsyncEngine) -> None:
    from bot.storage.context_store import StoredQuery

    store = ContextStore(migrated_engine, 3)
    me = Scope(1, 1)
    await store.append_exchange(me, "первый", "ответ", query_message_id=1, answer_pieces=[(2, "ответ")])
    await store.append_exchange(me, "второй", None, query_message_id=3)  # got the fallback line
    await store.append_exchange(Scope(1, 9), "чужой", "ответ", query_message_id=4, answer_pieces=[(5, "ок")])
    assert await store.get(me) == [Turn("user", "первый"), Turn("bot", "ответ"), Turn("user", "второй")]
    assert await store.latest_queries(me, 2) == [
        StoredQuery(3, "второй", answered=False),
        StoredQuery(1, "первый", answered=True),
    ]
    assert await store.latest_queries(me, 2, before=3) == [StoredQuery(1, "первый", answered=True)]
    assert await store.latest_queries(Scope(2, 2), 2) == []


async def test_replace_exchange_swaps_the_latest_exchange_only(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 4)
    me = Scope(1, 1)
    await store.append_exchange(me, "раз", "один", query_message_id=1, answer_pieces=[(2, "один")])
    await store.append_exchange(me, "два", "два", query_message_id=3, answer_pieces=[(4, "два")])
    assert not await store.replace_exchange(me, 1, "раз!", "один!", [(5, "один!")])  # not the latest
    assert await store.get(me) == [
        Turn("user", "раз"),
        Turn("bot", "один"),
        Turn("user", "два"),
        Turn("bot", "два"),
    ]

    assert await store.replace_exchange(me, 3, "два!", "ответ", [(6, "ответ")])
    assert await store.get(me) == [
        Turn("user", "раз"),
        Turn("bot", "один"),
        Turn("user", "два!"),
        Turn("bot", "ответ"),
    ]
    assert [(i, m.text) for i, m in await store.chain(1, 6, 5)] == [(6, "ответ"), (3, "два!")]
    assert await store.chain(1, 4, 5) == [] and await store.chain(1, 5, 5) == []
