"""What a deploy costs the users whose messages are in flight.

    python -m benchmarks.bot_deploy_cost [--users 6] [--per-user 3] [--answer-s 1.5] [--runs 2]

A deploy (``docker compose up -d`` with a new image) is SIGTERM to the running
bot, then a new process. Here: the real ``python -m bot`` polls the fake Bot
API (benchmarks/support/fake_bot_api.py), keeps its inbox and contexts in PostgreSQL
(127.0.0.1:5432, a scratch database), and asks a stub model server that takes
``--answer-s`` per answer. Each user sends a burst; once every chat has a
message in hand the bot gets SIGTERM, and a new bot starts as soon as the old
one has exited. Reported: how many messages were answered, by which process,
how many error replies, how long the stop took, and how late the answers came
compared with the same burst without a deploy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.support.bot_processes import (
    TOKEN,
    StubModelServer,
    bot_env,
    bot_process,
    terminate,
    text_update,
    wait_ready,
)
from benchmarks.support.databases import temporary_pg_database
from benchmarks.support.fake_bot_api import FakeBotAPI
from bot.core import texts

ERRORS = {texts.MODEL_UNAVAILABLE, texts.MODEL_TIMEOUT, texts.MODEL_FAILED, texts.INTERNAL_ERROR}


async def burst(users: int, per_user: int, answer_s: float, deploy: bool) -> dict[str, float]:
    api = await FakeBotAPI(TOKEN).start()
    model = await StubModelServer().start()
    model.delay_s = answer_s
    log = Path(tempfile.mkdtemp()) / "bot.log"
    chats = list(range(70_001, 70_001 + users))
    try:
        async with temporary_pg_database() as database:
            env = bot_env(api, database, model)
            async with bot_process(env, log) as first:
                await wait_ready(api, first, log)
                sent_at = time.monotonic()
                for i in range(per_user):
                    for chat in chats:
                        api.queue(text_update(api, chat, f"сообщение {i} от {chat}"))
                stop_s = 0.0
                if deploy:
                    while len(model.queries) < users:  # every chat has a message in hand
                        await asyncio.sleep(0.02)
                    stopping = time.monotonic()
                    await terminate(first)
                    stop_s = time.monotonic() - stopping
                    by_first = sum(len(api.messages_to(c)) for c in chats)
                    async with bot_process(env, log) as second:
                        await _all_answered(api, chats, per_user)
                        await terminate(second)
                else:
                    await _all_answered(api, chats, per_user)
                    by_first = users * per_user
                    await terminate(first)
    finally:
        await model.stop()
        await api.stop()
    delays = [c.at - sent_at for chat in chats for c in api.sent[chat]]
    replies = [t for chat in chats for t in api.messages_to(chat)]
    return {
        "answered": sum(1 for t in replies if t not in ERRORS),
        "errors": sum(1 for t in replies if t in ERRORS),
        "by_first": by_first,
        "stop_s": stop_s,
        "median_s": statistics.median(delays),
        "last_s": max(delays),
    }


async def _all_answered(api: FakeBotAPI, chats: list[int], per_user: int) -> None:
    await api.wait_for(lambda: all(len(api.messages_to(c)) >= per_user for c in chats), timeout=300)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--per-user", type=int, default=3)
    parser.add_argument("--answer-s", type=float, default=1.5)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    total = args.users * args.per_user
    print(f"{args.users} users x {args.per_user} messages, {args.answer_s} s per answer")
    print("| run | messages | answered | error replies | answered before the stop | stop s ", end="")
    print("| median s | last s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in range(args.runs):  # the two cases take turns, so load affects them alike
        for deploy in (False, True):
            r = asyncio.run(burst(args.users, args.per_user, args.answer_s, deploy))
            label = f"{run + 1}: {'SIGTERM + restart' if deploy else 'no deploy'}"
            print(
                f"| {label} | {total} | {r['answered']:.0f} | {r['errors']:.0f} | {r['by_first']:.0f} "
                f"| {r['stop_s']:.1f} | {r['median_s']:.1f} | {r['last_s']:.1f} |"
            )


if __name__ == "__main__":
    main()
