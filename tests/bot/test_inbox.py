"""The inbox table on both databases: what is kept, what is dropped, what comes next."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.support.bot_processes import TOKEN, text_update
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.storage.chat_settings import ChatSettings, ChatSettingsStore, StoredSettings
from bot.storage.db import create_engine
from bot.storage.inbox import Inbox, entry_of, forget_sender

# Numbers the test messages as Telegram would; never started, no bot talks to it here.
TELEGRAM = FakeBotAPI(TOKEN)


async def payloads(inbox: Inbox, chat_id: int) -> list[dict[str, Any]]:
    """The chat's waiting updates in processing order, each marked done as it is taken."""
    taken, done = [], None
    while (row := await inbox.next(chat_id, done)) is not None:
        done, payload = row.update_id, row.payload
        taken.append(json.loads(payload) if isinstance(payload, str) else payload)
    return taken


async def test_duplicates_are_dropped_and_order_is_arrival(migrated_engine: AsyncEngine) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5)
    first, second = text_update(TELEGRAM, 1, "раз"), text_update(TELEGRAM, 1, "два")
    other_chat = text_update(TELEGRAM, 2, "другой")
    resent_as_new = {**first, "update_id": first["update_id"] + 100}  # same message, new update id
    new = await inbox.add([entry_of(u) for u in (first, first, other_chat, second)])
    assert new == {first["update_id"], second["update_id"], other_chat["update_id"]}
    assert await inbox.add([entry_of(first), entry_of(resent_as_new)]) == set()

    assert sorted(await inbox.pending_chats()) == [1, 2]
    assert [p["message"]["text"] for p in await payloads(inbox, 1)] == ["раз", "два"]
    assert await inbox.pending_chats() == [2]
    # Done rows still catch a late re-send.
    assert await inbox.add([entry_of(second)]) == set()
    await inbox.close()


async def test_the_next_update_comes_with_its_chat_settings_as_they_are_now(
    migrated_engine: AsyncEngine,
) -> None:
    """Read in the statement that hands the update over: a change applies to the very next one."""
    inbox = Inbox(migrated_engine, timeout_s=5)
    store = ChatSettingsStore(migrated_engine, ChatSettings("mention", None, learning=False))
    first, second = text_update(TELEGRAM, 5, "раз"), text_update(TELEGRAM, 5, "два")
    await inbox.add([entry_of(first), entry_of(second)])
    row = await inbox.next(5)
    assert row is not None and row.settings == StoredSettings(None, None, None)  # no row yet
    await store.set(5, "reply_mode", "all")
    await store.set(5, "learning", True)
    row = await inbox.next(5, done=row.update_id)
    assert row is not None and row.update_id == second["update_id"]
    assert row.settings is not None
    assert store.resolve(row.settings) == ChatSettings("all", None, learning=True) == await store.get(5)
    await inbox.close()


async def test_an_edit_waits_in_its_chat_after_the_message_and_is_no_duplicate(
    migrated_engine: AsyncEngine,
) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5)
    sent = text_update(TELEGRAM, 8, "превет")
    edit = {
        "update_id": sent["update_id"] + 1,
        "edited_message": {**sent["message"], "text": "привет", "edit_date": sent["message"]["date"] + 5},
    }
    assert await inbox.add([entry_of(sent), entry_of(edit)]) == {sent["update_id"], edit["update_id"]}
    assert await inbox.pending_chats() == [8]  # not chat 0
    taken = await payloads(inbox, 8)
    assert [p.get("message", p.get("edited_message"))["text"] for p in taken] == ["превет", "привет"]
    await inbox.close()


async def test_control_characters_never_reach_the_table(migrated_engine: AsyncEngine) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5)
    update = text_update(TELEGRAM, 3, "при\x00вет\x07\nмир\t!")
    await inbox.add([entry_of(update)])
    [stored] = await payloads(inbox, 3)
    assert stored["message"]["text"] == "привет\nмир\t!"
    await inbox.close()


async def test_forget_sender_deletes_only_their_rows(migrated_engine: AsyncEngine) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5)
    await inbox.add([entry_of(text_update(TELEGRAM, chat, "x")) for chat in (4, 4, 5)])
    async with migrated_engine.begin() as connection:
        assert await forget_sender(connection, 4) == 2
    async with migrated_engine.connect() as connection:
        left = (await connection.execute(text("SELECT sender_id FROM telegram_inbox"))).scalars().all()
    assert left == [5]
    await inbox.close()


async def test_old_done_rows_are_purged_waiting_ones_kept(migrated_engine: AsyncEngine) -> None:
    inbox = Inbox(migrated_engine, timeout_s=5)
    await inbox.add(
        [entry_of(text_update(TELEGRAM, 6, "готово")), entry_of(text_update(TELEGRAM, 7, "ждёт"))]
    )
    await payloads(inbox, 6)
    assert await inbox.purge(age_s=3600) == 0  # done just now: kept
    assert await inbox.purge(age_s=-3600) == 1  # "older than an hour in the future": the done one
    assert await inbox.pending_chats() == [7]
    await inbox.close()


async def test_a_chat_is_taken_by_one_process_and_freed_when_it_dies(pg_database: URL) -> None:
    """Two processes' inboxes (two engines): the advisory lock excludes, and dies with its session."""
    one, two = create_engine(pg_database), create_engine(pg_database)
    try:
        first, second = Inbox(one, timeout_s=5), Inbox(two, timeout_s=5)
        assert await first.lock_chat(8)
        assert not await second.lock_chat(8)
        assert await second.lock_chat(9)  # other chats are free
        await first.close()  # the process is gone: its session, and so its locks
        assert await second.lock_chat(8)
        await second.unlock_chat(8)
        await second.close()
    finally:
        await one.dispose()
        await two.dispose()
