"""Bot overhead per message, and the cost of loading the speech recogniser per message.

    python -m benchmarks.bot_overhead [--rounds 200] [--concurrent-rounds 10] [--voice-runs 5] [--group]
                                      [--stream]
    python -m benchmarks.bot_overhead --baseline-tree /tmp/base [--turns 3] [--group]
    python -m benchmarks.bot_overhead --group --learning [--rounds 60 --concurrent-rounds 3 --voice-runs 0]

``--baseline-tree``: another checkout (``git worktree add /tmp/base <commit>``) whose
``python -m bot`` takes turns with this tree's, in one run, against the same fake
Bot API, model server and PostgreSQL; it prints the bot CPU per message of both
and the ratio (the figure a change is held to).

1. Per-message time spent by the bot outside the model: the real
   ``python -m bot`` process polls a fake Bot API (benchmarks/support/fake_bot_api.py)
   on loopback, keeps context in a real PostgreSQL (127.0.0.1:5432, user
   postgres; a scratch database is created and dropped), and asks a model
   server that answers instantly. Two measures per message:
   - reply latency: from the moment getUpdates hands the update to the bot
     until its sendMessage reaches the fake Bot API;
   - handling time: aiogram's own "Update id=N is handled. Duration X ms"
     (filter, context read, model call, reply, context write);
   and the bot process's CPU time per message (psutil).
   At 1 user (messages one after another) and at 50 users (each round, 50
   users send at once, so latency there includes waiting for the others).
   ``--group``: each user writes in a group, every message a reply to the
   bot's last answer there, so each one also looks up its reply chain.
   ``--learning`` (with ``--group``): the same bot twice in one run, without
   and then with learning on in every group (LEARNING_DEFAULT=on: each message
   also anonymised and written to corpus_message), and the ratio of bot CPU
   per message.
   ``--stream``: ``STREAM_ANSWERS=true``; the model server streams its answer
   in four pieces, so the bot sends drafts (or, in groups, edits) before the
   final message; without it, ``/answer``. ``--model-s``: the time the model
   takes per answer (``/answer`` waits it, the pieces are spread over it), so
   that both modes are compared on the same model.
2. Seconds of compute per second of audio for a voice message (PyAV decode +
   Whisper base, beam 1, int8 on CPU), recogniser loaded once (as the bot
   does) against loaded per message (what SpeechRecognition's
   ``recognize_faster_whisper`` does on every call).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from benchmarks.support.fake_bot_api import BOT_USER, FakeBotAPI
from benchmarks.support.net import free_port
from benchmarks.support.processes import start_module, stop
from benchmarks.support.speech import assemble_whisper_base, speech_ogg

REPO = Path(__file__).resolve().parents[1]

TOKEN = "100500:benchmark-token"
HANDLED = re.compile(r"Update id=(\d+) is handled\. Duration (\d+) ms")
STREAM_PIECES = 4


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def instant_model_server(port: int, model_s: float = 0.0) -> web.AppRunner:
    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(model_s)
        return web.json_response({"answer": f"ответ на {len(body['context'])} реплик"})

    async def stream(request: web.Request) -> web.StreamResponse:
        words = f"ответ на {len((await request.json())['messages']) - 1} реплик".split()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for index, word in enumerate(words):
            delta = {"content": word if index == 0 else f" {word}"}
            event = json.dumps({"choices": [{"delta": delta}]}, ensure_ascii=False)
            await response.write(f"data: {event}\n\n".encode())
            await asyncio.sleep(model_s / STREAM_PIECES)
        await response.write(b"data: [DONE]\n\n")
        return response

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "instant"}]})

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/answer", answer)
    app.router.add_post("/v1/chat/completions", stream)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def scratch_database() -> tuple[URL, URL]:
    admin = URL.create("postgresql+asyncpg", "postgres", host="127.0.0.1", port=5432, database="postgres")
    name = f"bot_bench_{uuid.uuid4().hex[:10]}"
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return admin, admin.set(database=name)


async def drop_database(admin: URL, url: URL) -> None:
    engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    await engine.dispose()


def send(api: FakeBotAPI, user: int, count: int, group: bool) -> int:
    if not group:
        return api.send_text(user, f"сообщение номер {count}")
    chat = -user  # one group per user
    last = api.sent[chat][-1].result["message_id"] if api.sent[chat] else None
    return api.send_text(user, f"@{BOT_USER['username']} сообщение номер {count}", chat, reply_to=last)


async def one_message_each(
    api: FakeBotAPI, users: list[int], counts: dict[int, int], group: bool = False
) -> list[tuple[int, float]]:
    """Every user sends one text at once; (update_id, reply latency in ms) per message."""
    chats = {user: -user if group else user for user in users}
    update_ids = {user: send(api, user, counts[user], group) for user in users}
    await api.wait_for(lambda: all(len(api.sent[chats[u]]) > counts[u] for u in users), timeout=120)
    results = []
    for user, update_id in update_ids.items():
        reply = api.sent[chats[user]][counts[user]]
        counts[user] += 1
        results.append((update_id, (reply.at - api.delivered_at[update_id]) * 1000))
    return results


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


LEARNING_ENV = {"LEARNING_DEFAULT": "on", "CORPUS_SECRET": "benchmark-corpus-secret"}


async def overhead(
    rounds: int,
    concurrent_rounds: int,
    group: bool = False,
    tree: Path = REPO,
    extra_env: dict[str, str] | None = None,
    stream: bool = False,
    model_s: float = 0.0,
) -> list[tuple[int, int, list[float], list[float], float, float]]:
    admin, database = await scratch_database()
    api = await FakeBotAPI(TOKEN).start()
    model_port = free_port()
    model = await instant_model_server(model_port, model_s)
    log_path = Path(tempfile.mkdtemp()) / "bot.log"
    env = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api.base_url,
        "MODEL_SERVER_URL": f"http://127.0.0.1:{model_port}",
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "RATE_LIMIT_MESSAGES": "1000000",
        "ASR_MODEL": "/nonexistent",  # voice is not measured here; skip loading Whisper
        "HF_HUB_OFFLINE": "1",
        "LOG_LEVEL": "INFO",
        **(extra_env or {}),
        "STREAM_ANSWERS": "true" if stream else "false",
    }
    bot = start_module("bot", env, log_path, tree)
    rows = []
    try:
        await api.wait_for(lambda: bool(api.calls_of("getUpdates")) or bot.poll() is not None, 120)
        if bot.poll() is not None:
            raise RuntimeError(log_path.read_text())
        counts: dict[int, int] = {}
        for users, n_rounds in ((1, rounds), (50, concurrent_rounds)):
            ids = list(range(10_000 * users, 10_000 * users + users))
            counts.update(dict.fromkeys(ids, 0))
            for _ in range(2):  # warm-up: pool connections, first insert and first update per user
                await one_message_each(api, ids, counts, group)
            samples: list[tuple[int, float]] = []
            cpu_before, wall_before = _cpu_seconds(bot.pid), time.perf_counter()
            updates_before = len(api.calls_of("sendMessageDraft")) + len(api.calls_of("editMessageText"))
            for _ in range(n_rounds):
                samples += await one_message_each(api, ids, counts, group)
            cpu_ms = (_cpu_seconds(bot.pid) - cpu_before) * 1000 / len(samples)
            updates = len(api.calls_of("sendMessageDraft")) + len(api.calls_of("editMessageText"))
            per_message = (updates - updates_before) / len(samples)
            print(f"{users} users: {per_message:.2f} drafts or edits per message", flush=True)
            throughput = len(samples) / (time.perf_counter() - wall_before)
            await asyncio.sleep(0.5)  # let the last "handled" lines reach the log
            handled = {int(i): float(ms) for i, ms in HANDLED.findall(log_path.read_text())}
            latencies = [ms for _, ms in samples]
            durations = [handled[i] for i, _ in samples if i in handled]
            rows.append((users, len(samples), latencies, durations, cpu_ms, throughput))
        if extra_env:
            print(f"corpus rows written: {await corpus_count(database)}", flush=True)
    finally:
        stop(bot)
        await model.cleanup()
        await api.stop()
        await drop_database(admin, database)
    return rows


async def corpus_count(database: URL) -> int:
    engine = create_async_engine(database)
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(text("SELECT count(*) FROM corpus_message"))).scalar_one())
    finally:
        await engine.dispose()


def compare_learning(rounds: int, concurrent_rounds: int) -> None:
    """The same bot without and with learning in every group, one after the other."""
    cpu = {}
    for label, env in (("without learning", None), ("with learning", LEARNING_ENV)):
        for users, _, _, _, cpu_ms, _ in asyncio.run(overhead(rounds, concurrent_rounds, True, REPO, env)):
            cpu[(label, users)] = cpu_ms
    print("\nbot CPU ms per group reply message, without and with learning (LEARNING_DEFAULT=on)")
    print("| concurrent users | without learning | with learning | ratio |")
    print("| ---: | ---: | ---: | ---: |")
    for users in (1, 50):
        old, new = cpu[("without learning", users)], cpu[("with learning", users)]
        print(f"| {users} | {old:.2f} | {new:.2f} | {new / old:.2f} |")


def voice_sample(workdir: Path) -> tuple[bytes, float]:
    from bot.core.speech import SAMPLE_RATE, decode_audio

    data = speech_ogg("сегодня хорошая погода, давай пойдём гулять в парк и возьмём с собой собаку", workdir)
    return data, len(decode_audio(data)) / SAMPLE_RATE


def voice(runs: int) -> list[tuple[str, float, float, str]]:
    from bot.core.speech import FasterWhisperRecognizer

    model_dir = assemble_whisper_base(Path(tempfile.mkdtemp()) / "whisper-base")
    data, seconds = voice_sample(model_dir)

    started = time.perf_counter()
    FasterWhisperRecognizer(str(model_dir), "ru", beam_size=1).close()
    load_s = time.perf_counter() - started

    def measure(make_recognizer_each_time: bool) -> tuple[float, float, str]:
        walls, cpus = [], []
        recognizer = (
            None if make_recognizer_each_time else FasterWhisperRecognizer(str(model_dir), "ru", beam_size=1)
        )
        transcript = ""
        for _ in range(runs + 1):  # first run is warm-up
            wall, cpu = time.perf_counter(), time.process_time()
            current = recognizer or FasterWhisperRecognizer(str(model_dir), "ru", beam_size=1)
            transcript = current.transcribe_sync(data)
            if current is not recognizer:
                current.close()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        if recognizer is not None:
            recognizer.close()
        return statistics.median(walls[1:]), statistics.median(cpus[1:]), transcript

    rows = []
    for label, reload in (("loaded once (the bot)", False), ("loaded per message", True)):
        wall, cpu, transcript = measure(reload)
        rows.append((label, wall / seconds, cpu / seconds, transcript))
    print(
        f"\nvoice: {seconds:.2f} s of espeak-ng Russian speech, OGG/Opus; Whisper base int8, beam 1, CPU; "
        f"loading the model takes {load_s:.2f} s (files in page cache)"
    )
    return rows


def compare_trees(baseline: Path, turns: int, rounds: int, concurrent_rounds: int, group: bool) -> None:
    """Both bots take turns (baseline first); medians of the turns' CPU per message."""
    cpu: dict[tuple[str, int], list[float]] = {}
    for turn in range(turns):
        for label, tree in (("baseline", baseline.resolve()), ("this tree", REPO)):
            for users, _, _, _, cpu_ms, _ in asyncio.run(overhead(rounds, concurrent_rounds, group, tree)):
                cpu.setdefault((label, users), []).append(cpu_ms)
            print(f"turn {turn + 1}/{turns}: {label} done", flush=True)
    kind = "group reply (chain lookup)" if group else "private text"
    print(f"\nbot CPU ms per {kind} message, medians of {turns} turns (baseline: {baseline})")
    print("| concurrent users | baseline | this tree | ratio | ratio of each turn's pair, median (range) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for users in (1, 50):
        olds, news = cpu[("baseline", users)], cpu[("this tree", users)]
        old, new = statistics.median(olds), statistics.median(news)
        # A turn's two bots ran back to back, so their ratio shares whatever load the machine had then.
        pairs = [n / o for o, n in zip(olds, news, strict=True)]
        spread = f"{statistics.median(pairs):.2f} ({min(pairs):.2f}-{max(pairs):.2f})"
        print(f"| {users} | {old:.2f} | {new:.2f} | {new / old:.2f} | {spread} |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=200, help="messages of the single user")
    parser.add_argument("--concurrent-rounds", type=int, default=10, help="rounds of 50 users at once")
    parser.add_argument("--voice-runs", type=int, default=5, help="0: skip the voice measurement")
    parser.add_argument("--group", action="store_true", help="group replies: chain lookups included")
    parser.add_argument("--stream", action="store_true", help="STREAM_ANSWERS=true: drafts or edits too")
    parser.add_argument("--model-s", type=float, default=0.0, help="seconds the model takes per answer")
    parser.add_argument(
        "--learning", action="store_true", help="with --group: CPU per message without and with learning"
    )
    parser.add_argument(
        "--baseline-tree", type=Path, help="another checkout whose bot takes turns with this one"
    )
    parser.add_argument("--turns", type=int, default=3, help="with --baseline-tree: turns of each bot")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.learning:
        if not args.group:
            parser.error("--learning measures groups: add --group")
        compare_learning(args.rounds, args.concurrent_rounds)
        return
    if args.baseline_tree is not None:
        compare_trees(args.baseline_tree, args.turns, args.rounds, args.concurrent_rounds, args.group)
        return

    rows = asyncio.run(
        overhead(args.rounds, args.concurrent_rounds, args.group, stream=args.stream, model_s=args.model_s)
    )
    kind = "group reply (chain lookup)" if args.group else "private text"
    how = f"{'streamed in 4 pieces' if args.stream else '/answer'}, {args.model_s:g} s per answer"
    print(f"\nbot overhead per {kind} message (instant model server, {how}, fake Bot API, PostgreSQL)")
    print(
        "| concurrent users | messages | reply latency p50 ms | p99 ms | handling p50 ms | p99 ms "
        "| bot CPU ms/message | messages/s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for users, n, latencies, durations, cpu_ms, throughput in rows:
        print(
            f"| {users} | {n} | {percentile(latencies, 50):.1f} | {percentile(latencies, 99):.1f} "
            f"| {percentile(durations, 50):.0f} | {percentile(durations, 99):.0f} "
            f"| {cpu_ms:.2f} | {throughput:.0f} |"
        )
    single = percentile(rows[0][2], 50)
    # The latency holds the model's time, which is not the bot's.
    met = "met" if single - args.model_s * 1000 <= 10 else "NOT met"
    print(f"target p50 <= 10 ms at 1 user (less the model's {args.model_s:g} s): {met} ({single:.1f} ms)")
    if args.voice_runs == 0:
        return

    voice_rows = voice(args.voice_runs)
    print("| recogniser | wall s per audio s | CPU s per audio s | transcript |")
    print("| --- | ---: | ---: | --- |")
    for label, wall, cpu, transcript in voice_rows:
        print(f"| {label} | {wall:.2f} | {cpu:.2f} | {transcript} |")
    once, each = voice_rows
    print(
        f"loading per message costs {each[1] / once[1]:.1f}x wall time and {each[2] / once[2]:.1f}x CPU time"
    )


if __name__ == "__main__":
    main()
