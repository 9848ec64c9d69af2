"""Streamed answers as a user sees them: the real ``python -m bot``, the fake Bot API, a stub model server.

The stub streams "ответ на: <query>" a word at a time, ``chunk_delay_s`` apart,
so the drafts and edits have time to happen (docs/groups.md, streamed answers).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from benchmarks.support.bot_processes import (
    StubModelServer,
    bot_env,
    bot_process,
    eventually,
    terminate,
    wait_ready,
)
from benchmarks.support.fake_bot_api import BOT_USER, FakeBotAPI, reply_target
from bot.core import texts
from tests.bot.test_end_to_end import stored_context

GROUP, ALICE = -100555, 3001
MENTION = f"@{BOT_USER['username']}"
QUERY = "расскажи что-нибудь интересное про погоду"
ANSWER = f"ответ на: {QUERY}"  # 7 words: 7 pieces


async def stored(database: URL, chat_id: int) -> list[dict[str, str]]:
    return await stored_context(database, ALICE, chat_id)


async def stored_answer(database: URL, chat_id: int, answer: str) -> str | None:
    """Alice's stored bot turn in the chat once it is ``answer`` (stored after sending), else the last."""

    async def latest() -> str | None:
        turns = await stored(database, chat_id)
        return turns[-1]["text"] if turns and turns[-1]["role"] == "bot" else None

    async def there() -> bool:
        return await latest() == answer

    await eventually(there)
    return await latest()


@asynccontextmanager
async def streaming_bot(
    api: FakeBotAPI, model: StubModelServer, database: URL, tmp_path: Path, **env: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The bot, polling, with a model that streams the answer a word every 0.45 s; stopped cleanly."""
    model.chunks, model.chunk_delay_s = len(ANSWER.split()), 0.45
    log = tmp_path / "bot.log"
    async with bot_process(bot_env(api, database, model, **env), log) as bot:
        await wait_ready(api, bot, log)
        yield bot
        assert await terminate(bot) == 0


def growing(texts_: list[str], final: str) -> bool:
    """Each text a prefix of the final, each longer than the one before."""
    return all(final.startswith(t) for t in texts_) and all(len(a) < len(b) for a, b in pairwise(texts_))


@pytest.mark.timeout(120)
async def test_private_answer_grows_in_drafts_then_is_sent_and_stored(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    async with streaming_bot(api, model, pg_database, tmp_path):
        api.send_text(ALICE, QUERY)
        assert await api.replies(ALICE, 0, 1) == [ANSWER]
        drafts = api.delivered("sendMessageDraft", ALICE)
        # A draft at most every 300 ms over ~3 s of pieces, each a prefix of the answer, one draft id.
        assert 3 <= len(drafts) <= 8, [d.params["text"] for d in drafts]
        assert growing([d.params["text"] for d in drafts], ANSWER)
        assert len({d.params["draft_id"] for d in drafts}) == 1
        assert all(b.at - a.at >= 0.29 for a, b in pairwise(drafts))
        [sent] = api.delivered("sendMessage", ALICE)
        assert sent.at > drafts[-1].at
        assert await stored_answer(pg_database, ALICE, ANSWER) == ANSWER
        assert await stored(pg_database, ALICE) == [
            {"role": "user", "text": QUERY},
            {"role": "bot", "text": ANSWER},
        ]

        # The stream breaks after three pieces: what arrived and the error line, nothing stored.
        model.break_after = 3
        api.send_text(ALICE, "а ещё?")
        [broken] = await api.replies(ALICE, 1, 1)
        assert broken == f"ответ на: а\n\n{texts.MODEL_UNAVAILABLE}"
        await asyncio.sleep(0.5)  # a wrongful write would have happened by now
        assert (await stored(pg_database, ALICE))[-1] == {"role": "bot", "text": ANSWER}


@pytest.mark.timeout(120)
async def test_group_reply_is_edited_as_it_grows_and_a_429_skips_intermediate_edits(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    async with streaming_bot(api, model, pg_database, tmp_path):
        asked = api.pushed[api.send_text(ALICE, f"{MENTION} {QUERY}", GROUP)]
        await api.wait_for(lambda: api.shown_in(GROUP) == [ANSWER])
        [first] = api.delivered("sendMessage", GROUP)
        edits = api.delivered("editMessageText", GROUP)
        assert reply_target(first) == asked["message_id"] and not api.calls_of("sendMessageDraft")
        # The reply once it had three words, then edits at most once a second, the last one whole.
        assert len(first.params["text"].split()) >= 3 and edits and edits[-1].params["text"] == ANSWER
        assert growing([first.params["text"]] + [e.params["text"] for e in edits], ANSWER)
        times = [first.at] + [e.at for e in edits]
        assert all(b - a >= 0.95 for a, b in pairwise(times))
        assert {int(e.params["message_id"]) for e in edits} == {first.result["message_id"]}
        assert await stored_answer(pg_database, GROUP, ANSWER) == ANSWER

        # A 429 on the first edit of a longer answer (14 pieces, ~6 s): that edit is not retried,
        # the ones within retry_after are skipped, and the final edit, after it, is whole.
        model.chunks = 14
        longer = f"{QUERY} и про ветер и дождь и снег"
        api.fail_next("editMessageText", 429, "Too Many Requests: retry after 2", retry_after=2)
        calls = len(api.calls_of("editMessageText"))
        api.send_text(ALICE, f"{MENTION} {longer}", GROUP)
        await api.wait_for(lambda: api.shown_in(GROUP) == [ANSWER, f"ответ на: {longer}"], timeout=30)
        failed, *after = api.calls_of("editMessageText")[calls:]
        assert failed.failed and failed.params["text"] != f"ответ на: {longer}"  # an intermediate one
        assert after and not any(c.failed for c in after) and after[0].at - failed.at >= 1.95
        assert failed.params["text"] not in [c.params["text"] for c in after]  # never sent again


@pytest.mark.timeout(120)
async def test_stream_answers_off_sends_one_whole_message(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    async with streaming_bot(api, model, pg_database, tmp_path, STREAM_ANSWERS="false"):
        api.send_text(ALICE, QUERY)
        assert await api.replies(ALICE, 0, 1) == [ANSWER]
        api.send_text(ALICE, f"{MENTION} {QUERY}", GROUP)
        assert await api.replies(GROUP, 0, 1) == [ANSWER]
        assert not api.calls_of("sendMessageDraft") and not api.calls_of("editMessageText")
    assert model.queries == [QUERY, QUERY] and model.streamed == 0  # both asked of /answer


@pytest.mark.timeout(120)
async def test_long_answer_continues_in_a_new_message_as_it_grows(
    api: FakeBotAPI, model: StubModelServer, pg_database: URL, tmp_path: Path
) -> None:
    query = " ".join(["слово"] * 750)  # the answer: 4510 characters, over Telegram's 4096
    answer = f"ответ на: {query}"
    async with streaming_bot(api, model, pg_database, tmp_path):
        api.send_text(ALICE, f"{MENTION} {query}", GROUP)
        await api.wait_for(lambda: " ".join(api.shown_in(GROUP)) == answer)
        first, second = api.shown_in(GROUP)
        assert len(first) <= 4096 and len(second) <= 4096
        assert all(len(e.params["text"]) <= 4096 for e in api.calls_of("editMessageText"))
        assert api.calls_of("editMessageText")  # it grew in place before it continued
        assert await stored_answer(pg_database, GROUP, answer) == answer
        # In private: drafts of the piece being written, then both pieces as messages.
        api.send_text(ALICE, query)
        assert " ".join(await api.replies(ALICE, 0, 2)) == answer
        drafts = api.delivered("sendMessageDraft", ALICE)
        assert drafts and all(0 < len(d.params["text"]) <= 4096 for d in drafts)
        assert await stored_answer(pg_database, ALICE, answer) == answer


@pytest.mark.timeout(180)
async def test_voice_question_answer_streams_too(
    api: FakeBotAPI,
    model: StubModelServer,
    pg_database: URL,
    tmp_path: Path,
    whisper_model_dir: Path,
    russian_voice_ogg: bytes,
) -> None:
    whisper = {"ASR_MODEL": str(whisper_model_dir), "ASR_BEAM_SIZE": "1", "VOICE_MAX_SECONDS": "30"}
    async with streaming_bot(api, model, pg_database, tmp_path, **whisper):
        api.send_voice(ALICE, russian_voice_ogg, duration=2)
        recognised, answer = await api.replies(ALICE, 0, 2, timeout=90)
        assert answer == f"ответ на: {recognised.removeprefix('Распознано: ')}"
        drafts = [d.params["text"] for d in api.delivered("sendMessageDraft", ALICE)]
        assert drafts and growing(drafts, answer)
