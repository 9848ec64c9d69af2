"""Learning end to end: the real ``python -m bot`` against the fake Bot API and PostgreSQL.

A group of three speakers who reply to each other; an admin turns learning on
through the keyboard (a non-admin is refused, by command and by press); 120
messages; one person opts out, another uses /forget. The corpus holds the
rest, anonymised, with the reply chain kept; nothing private.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.support.bot_processes import StubModelServer, bot_env, bot_process, eventually, wait_ready
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.core import texts
from bot.storage.corpus import author_key

GROUP = -4242
SECRET = "e2e-corpus-secret"
ANNA, BORIS, VERA = 701, 702, 703
NAMES = {ANNA: "Анна", BORIS: "Борис", VERA: "Вера"}


async def corpus_rows(url: URL) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            statement = "SELECT * FROM corpus_message ORDER BY message_id"
            return list((await connection.execute(text(statement))).all())
    finally:
        await engine.dispose()


def said(speaker: int, i: int) -> str:
    """What each one says: names, a phone number and an e-mail among ordinary talk.

    Each greets first: the bot knows a name once it has seen its owner (docs/groups.md).
    """
    if i < 3:
        return "всем привет"
    other = NAMES[[ANNA, BORIS, VERA][(i + 1) % 3]]
    if i % 10 == 0:
        return f"{other}, мой номер +7 912 345-67-{i % 90 + 10}"
    if i % 10 == 5:
        return f"пиши на {NAMES[speaker].lower()}{i}@example.com"
    return f"{other}, как тебе идея номер {i}?"


async def test_a_group_learns_with_consent(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    api.first_names.update(NAMES)
    api.admins.add((GROUP, ANNA))
    log = tmp_path / "bot.log"
    async with bot_process(bot_env(api, pg_database, model, CORPUS_SECRET=SECRET), log) as bot:
        await wait_ready(api, bot, log)
        # A member may not open the settings; the admin may.
        api.send_text(BORIS, "/settings", chat_id=GROUP)
        assert await api.replies(GROUP, 0, 1) == [texts.SETTINGS_ADMINS_ONLY]
        api.send_text(ANNA, "/settings", chat_id=GROUP)
        assert await api.replies(GROUP, 1, 1) == [texts.SETTINGS_GROUP]
        keyboard = api.sent[GROUP][1].result
        learning_on = next(
            b["callback_data"]
            for row in keyboard["reply_markup"]["inline_keyboard"]
            for b in row
            if b["text"] == texts.BUTTON_LEARNING_ON
        )
        # Nor press its buttons.
        api.press(BORIS, GROUP, keyboard["message_id"], learning_on)
        await api.wait_for(lambda: bool(api.calls_of("answerCallbackQuery")))
        refusal = api.calls_of("answerCallbackQuery")[0].params
        assert refusal["text"] == texts.SETTINGS_ADMINS_ONLY
        api.press(ANNA, GROUP, keyboard["message_id"], learning_on)
        [announcement] = await api.replies(GROUP, 2, 1)
        assert "/optout" in announcement and "365" in announcement

        previous: int | None = None
        sent: list[tuple[int, int, int | None]] = []  # (speaker, update id, replied-to message id)
        for i in range(120):
            speaker = [ANNA, BORIS, VERA][i % 3]
            update_id = api.send_text(speaker, said(speaker, i), chat_id=GROUP, reply_to=previous)
            sent.append((speaker, update_id, previous))
            previous = api.pushed[update_id]["message_id"]
        api.send_text(ANNA, "это личное", chat_id=ANNA)  # a private chat: answered, never collected
        assert len(await eventually(lambda: _rows(pg_database, 120), timeout=60)) == 120

        api.send_text(BORIS, "/optout", chat_id=GROUP)
        api.send_text(VERA, "/forget", chat_id=VERA)
        await api.replies(VERA, 0, 1, timeout=30)
        await api.replies(GROUP, 3, 1, timeout=30)
        api.send_text(BORIS, "Борис опять пишет", chat_id=GROUP)
        api.send_text(ANNA, "последнее слово", chat_id=GROUP)
        rows = await eventually(lambda: _rows(pg_database, 41), timeout=30)
        assert bot.poll() is None, log.read_text()

    keys = {author_key(SECRET, person): person for person in NAMES}
    assert {keys[row.author_key] for row in rows} == {ANNA}  # Борис opted out, Вера forgot
    assert all(row.chat_id == GROUP for row in rows)
    assert len(rows) == 41 and rows[-1].text == "последнее слово"
    by_id = {api.pushed[u]["message_id"]: (speaker, reply_to) for speaker, u, reply_to in sent}
    for row in rows[:-1]:
        assert row.reply_to_message_id == by_id[row.message_id][1]
        assert not any(name in row.text for name in NAMES.values()) and "example.com" not in row.text, (
            row.text
        )
    assert "[NAME], мой номер [PHONE]" in [row.text for row in rows]
    assert any(row.text.startswith("пиши на [EMAIL]") for row in rows)
    assert SECRET not in log.read_text()


async def _rows(url: URL, count: int) -> list[Any] | None:
    rows = await corpus_rows(url)
    return rows if len(rows) == count else None
