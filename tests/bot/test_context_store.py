from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.context_store import ContextStore
from dialogue.format import Turn


async def stored_row(engine: AsyncEngine, user_id: int) -> list[dict[str, str]] | None:
    async with engine.connect() as connection:
        value = (
            await connection.execute(
                text("SELECT context FROM user_context WHERE user_id = :u"), {"u": user_id}
            )
        ).scalar_one_or_none()
    return json.loads(value) if isinstance(value, str) else value


async def test_new_user_has_empty_context(migrated_engine: AsyncEngine) -> None:
    assert await ContextStore(migrated_engine, 3).get(42) == []


async def test_append_keeps_last_context_size_messages_oldest_first(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(7, "привет", "здравствуй")
    assert await store.get(7) == [Turn("user", "привет"), Turn("bot", "здравствуй")]

    await store.append_exchange(7, "как дела?", "хорошо")
    assert await store.get(7) == [Turn("bot", "здравствуй"), Turn("user", "как дела?"), Turn("bot", "хорошо")]
    assert await stored_row(migrated_engine, 7) == [
        {"role": "bot", "text": "здравствуй"},
        {"role": "user", "text": "как дела?"},
        {"role": "bot", "text": "хорошо"},
    ]


async def test_users_do_not_share_context(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.append_exchange(1, "a", "b")
    await store.append_exchange(2, "c", "d")
    assert await store.get(1) == [Turn("user", "a"), Turn("bot", "b")]
    assert await store.get(2) == [Turn("user", "c"), Turn("bot", "d")]


@pytest.mark.parametrize("size", [1, 2, 5])
async def test_other_context_sizes(migrated_engine: AsyncEngine, size: int) -> None:
    store = ContextStore(migrated_engine, size)
    history: list[Turn] = []
    for i in range(4):
        await store.append_exchange(9, f"u{i}", f"b{i}")
        history += [Turn("user", f"u{i}"), Turn("bot", f"b{i}")]
        assert await store.get(9) == history[-size:]


async def test_clear_forgets_and_works_for_unknown_user(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    await store.clear(12345)  # never wrote before
    await store.append_exchange(5, "x", "y")
    await store.clear(5)
    assert await store.get(5) == []
    await store.append_exchange(5, "снова", "да")
    assert await store.get(5) == [Turn("user", "снова"), Turn("bot", "да")]


async def test_texts_survive_unicode_quotes_and_big_ids(migrated_engine: AsyncEngine) -> None:
    store = ContextStore(migrated_engine, 3)
    user_id = 2**62  # Telegram ids exceed 32 bits
    odd = "кавычки \"двойные\" \\ обратный слеш, emoji 🙂, 'одинарные'"
    await store.append_exchange(user_id, odd, "ок")
    assert await store.get(user_id) == [Turn("user", odd), Turn("bot", "ок")]


async def test_concurrent_appends_of_one_user_lose_nothing(migrated_engine: AsyncEngine) -> None:
    n = 50
    store = ContextStore(migrated_engine, 2 * n)  # room for everything: nothing may be lost
    await asyncio.gather(*(store.append_exchange(3, f"q{i}", f"a{i}") for i in range(n)))
    context = await store.get(3)
    assert len(context) == 2 * n
    # Exchanges stay whole (question right before its answer), each exactly once.
    pairs = [(context[k], context[k + 1]) for k in range(0, 2 * n, 2)]
    assert all(q == Turn("user", f"q{q.text[1:]}") and a == Turn("bot", f"a{q.text[1:]}") for q, a in pairs)
    assert sorted(int(q.text[1:]) for q, _ in pairs) == list(range(n))


async def test_concurrent_appends_trim_to_a_well_formed_tail(migrated_engine: AsyncEngine) -> None:
    n = 50
    store = ContextStore(migrated_engine, 3)
    await asyncio.gather(*(store.append_exchange(4, f"q{i}", f"a{i}") for i in range(n)))
    context = await store.get(4)
    assert [t.role for t in context] == ["bot", "user", "bot"]
    assert context[2].text == "a" + context[1].text[1:]
    assert context[0].text != context[2].text
    row = await stored_row(migrated_engine, 4)
    assert row is not None and len(row) == 3 and all(set(item) == {"role", "text"} for item in row)
