"""Model server throughput per engine, against each engine's bare batched call, in one run.

    python -m benchmarks.server_throughput --engine transformers --engine ctranslate2
    python -m benchmarks.server_throughput --engine transformers --engine ctranslate2:float32 --rounds 3
    python -m benchmarks.server_throughput --small --rounds 1     # a quick dry run of the script
    python -m benchmarks.server_throughput --context 3            # each query after 3 messages
    python -m benchmarks.server_throughput --stream --context 3 --baseline-tree /tmp/base

A random-weight GPT-2 of ruDialoGPT-medium's shape (24 layers, 1024 wide, 16
heads, vocab 50261; the tokenizer is the tests' small one, so the embedding has
more rows than the tokenizer has tokens) answers with settings both engines
honour: greedy, and the model card's sampling with one beam. Tokens that hold
"@" and EOS get zero embeddings, so no answer stops early: every request is
``--new-tokens`` tokens on every path; tokens that print nothing (rows past the
tokenizer's among them) get zero embeddings too, so every answer streams text.
By default a request is its query alone; ``--context N`` puts the last N
messages of a short chat before it, as the bot
does (how fast an engine reads a prompt shows there).

Each engine runs as a real ``python -m model_server`` process (its peak RSS is
its own), and the engines take turns round by round, so load from other
processes falls on all of them alike. Printed per mode and engine: requests/s
at 1 and at ``--clients`` concurrent clients, the bare batched call, peak RSS,
and ratios against the first engine (transformers fp32). Then Poisson arrivals
at 70% of each engine's measured capacity: what a user waits under real traffic.

``--stream`` adds the same arrivals streamed over ``/v1/chat/completions``
(SSE), as the bot asks: time to first token and total time of a lone request,
then p50/p95 of both under the load and p95 against the lone request.
``--baseline-tree``: another checkout (``git worktree add --detach /tmp/base main``)
whose model server runs beside this tree's, each engine's two taking turns, in
this interpreter's environment; its 16-client throughput is printed against
this tree's, and it streams too.

Targets on a CPU: CTranslate2 int8 >= 2.5x requests/s at 1 and 16 clients and
peak RSS <= 0.6x of transformers fp32; server(16) >= 0.9x bare batched (16);
this tree >= 0.9x the baseline's requests/s at 16 clients; streamed under 70%
load, p95 time to first token <= 3x and p95 total <= 2.5x the lone request's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import httpx

from benchmarks.server_processes import ModelServer, rss_mib
from benchmarks.support.bare_engine import Bare
from benchmarks.support.poisson_load import answered, arrivals, print_stream_table, stream_figures
from benchmarks.support.throughput_report import (
    baseline_label,
    engine_label,
    print_against_baseline,
    print_poisson,
    print_tables,
)
from benchmarks.support.tiny_model import build_tokenizer
from dialogue.generation import MODEL_CARD_GENERATION as CARD

QUERIES = [
    "привет, как дела?", "что ты сегодня делал вечером?", "посоветуй хороший фильм", "какая погода в Москве?",
    "ты любишь кофе или чай?", "расскажи что-нибудь интересное", "где лучше провести отпуск летом?",
    "как приготовить борщ?", "что почитать про космос?", "пойдём гулять в парк", "у меня кот заболел",
    "сколько будет два плюс два?", "какой у тебя любимый город?", "спокойной ночи",
    "кто идёт на встречу в субботу?", "напиши расписание поездов",
]  # fmt: skip
# Settings both engines honour; "sampling" is the model card's with one beam.
MODES: dict[str, dict[str, Any]] = {
    "greedy": {"do_sample": False, "num_beams": 1, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0},
    "sampling": {k: v for k, v in CARD.items() if k not in ("max_new_tokens", "length_penalty")}
    | {"num_beams": 1},
}
DEFAULT_COMPUTE = {"transformers": "float32", "ctranslate2": "int8"}
# The bot spoke last, so a query is a turn of its own.
CHAT = [
    {"role": "bot", "text": "вчера был на встрече в офисе, обсуждали новый проект"},
    {"role": "user", "text": "и как, много народу пришло?"},
    {"role": "bot", "text": "человек десять, Олег опять опоздал на полчаса"},
]


def chat(messages: int) -> list[dict[str, str]]:
    return CHAT[len(CHAT) - messages :]


def silent_tokens(tokenizer: Any, rows: int) -> list[int]:
    """Token ids an answer must not hold: "@" (the speaker tag would end it), EOS, and those that
    print nothing alone (rows past the tokenizer's, halves of a character, whitespace, control
    characters): the server would stream no text, and a stream's first token could not be timed."""

    def silent(text: str) -> bool:
        return "@" in text or "\ufffd" in text or not text.strip() or not text.strip().isprintable()

    quiet = [i for i in range(len(tokenizer)) if silent(tokenizer.decode([i]))]
    return sorted({*quiet, tokenizer.eos_token_id, *range(len(tokenizer), rows)})


def build_model(out_dir: Path, small: bool, seed: int = 0, layers_width: str | None = None) -> None:
    """The benchmark's random GPT-2: medium's shape, 2 x 128 when ``small``, or ``layers_width`` ("6x512")."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tokenizer()
    shape = dict(n_layer=2, n_embd=128, n_head=2) if small else dict(n_layer=24, n_embd=1024, n_head=16)
    if layers_width:
        layers, width = (int(n) for n in layers_width.split("x"))
        shape = dict(n_layer=layers, n_embd=width, n_head=width // 64)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=50261, n_positions=1024, bos_token_id=eos, eos_token_id=eos, **shape)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # tied: a zero row gets logit 0, below the top of the random logits
        model.transformer.wte.weight[silent_tokens(tokenizer, config.vocab_size)] = 0
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


async def concurrent_seconds(client: httpx.AsyncClient, queries: list[str], context: list[dict]) -> float:
    """Wall time until every query, each sent by its own client at once, is answered."""
    started = time.perf_counter()
    await asyncio.gather(*(answered(client, q, context) for q in queries))
    return time.perf_counter() - started


async def measure(
    servers: dict[str, ModelServer], bares: dict[str, Bare], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each path of each server; servers and paths take turns every round.

    A server whose label has no bare call of its own (a baseline tree's) shares
    its engine's: the bare call is the libraries', the same for both trees.
    """
    batch = QUERIES[: args.clients]
    context = chat(args.context)
    times = {name: {"server1": [], "server_n": [], "bare_n": []} for name in servers}
    clients = {name: httpx.AsyncClient(base_url=s.url, timeout=900) for name, s in servers.items()}
    # Warm-up, a full batch on each path: a fresh process's first batch of a new
    # size runs up to 40% slower (its memory is mapped afresh), which counted
    # against the server, started just before. It also opens the connections.
    for bare in bares.values():
        bare.seconds(batch)
    for name in servers:
        await concurrent_seconds(clients[name], batch, context)
    for round_ in range(args.rounds):
        for name in servers:
            for i in range(args.repeat):
                query = [batch[(round_ * args.repeat + i) % len(batch)]]
                times[name]["server1"].append(await concurrent_seconds(clients[name], query, context))
            times[name]["server_n"].append(await concurrent_seconds(clients[name], batch, context))
            if name in bares:
                times[name]["bare_n"].append(bares[name].seconds(batch))
    for name in servers:
        times[name]["bare_n"] = times[name]["bare_n"] or times[engine_label(name)]["bare_n"]
    for client in clients.values():
        await client.aclose()
    return times


def batch_sizes(url: str) -> str:
    """How the server grouped the requests so far, from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
        if family.name == "generate_batch_size"
        for sample in family.samples
    }
    calls, requests = samples[("generate_batch_size_count", None)], samples[("generate_batch_size_sum", None)]
    full = calls - samples[("generate_batch_size_bucket", "8.0")]
    return f"{requests:.0f} requests in {calls:.0f} generate calls, {full:.0f} of them over 8"


async def poisson(servers: dict[str, ModelServer], capacity: dict[str, float], args: argparse.Namespace):
    out = {}
    for name, server in servers.items():
        async with httpx.AsyncClient(base_url=server.url, timeout=900) as client:

            def ask(i: int, client: httpx.AsyncClient = client) -> Coroutine[Any, Any, float]:
                return answered(client, QUERIES[i % len(QUERIES)], chat(args.context))

            out[name] = await arrivals(ask, 0.7 * capacity[name], args.poisson_requests, seed=1)
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--engine", action="append",
        help="NAME[:COMPUTE_TYPE][+REPLICAS] (ENGINE_REPLICAS, CTranslate2); the first is the baseline",
    )  # fmt: skip
    parser.add_argument("--mode", action="append", choices=list(MODES), help="default: both")
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every measurement")
    parser.add_argument("--repeat", type=int, default=3, help="single requests per engine and round")
    parser.add_argument("--poisson-requests", type=int, default=16, help="0: no Poisson run")
    parser.add_argument(
        "--context", type=int, default=0, choices=range(len(CHAT) + 1), help="messages before a query"
    )
    parser.add_argument("--small", action="store_true", help="a 2-layer model, to check the script")
    parser.add_argument("--shape", help="LAYERSxWIDTH instead, e.g. 6x512 (heads of 64)")
    parser.add_argument(
        "--stream", action="store_true", help="also the Poisson run streamed over /v1/chat/completions"
    )
    parser.add_argument("--stream-requests", type=int, default=32, help="requests of the streamed run")
    parser.add_argument(
        "--baseline-tree", type=Path, help="another checkout whose model server runs beside this one's"
    )
    return parser.parse_args()


def start_servers(
    model_dir: Path, engines: dict[str, tuple[str, str]], env: dict[str, str], args: argparse.Namespace
) -> dict[str, ModelServer]:
    """This tree's server of each engine, each followed by the baseline tree's."""
    servers = {}
    for label, (engine, compute) in engines.items():
        replicas = {"ENGINE_REPLICAS": label.partition("+")[2] or "1"}
        servers[label] = ModelServer(model_dir, engine, compute, env | replicas, args.clients)
        # The baseline has no replicas (ENGINE_REPLICAS is new): its server would be the plain one again.
        if args.baseline_tree is not None and "+" not in label:
            tree = args.baseline_tree.resolve()
            servers[baseline_label(label)] = ModelServer(model_dir, engine, compute, env, args.clients, tree)
    return servers


def run_mode(
    mode: str, model_dir: Path, engines: dict[str, tuple[str, str]], args: argparse.Namespace
) -> None:
    env = {
        f"GEN_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v) for k, v in MODES[mode].items()
    }
    env |= {"GEN_MAX_NEW_TOKENS": str(args.new_tokens), "GEN_MIN_NEW_TOKENS": str(args.new_tokens)}
    servers = start_servers(model_dir, engines, env, args)
    try:
        bares = {
            k: Bare(e, c, model_dir, MODES[mode], args.new_tokens, chat(args.context))
            for k, (e, c) in engines.items()
        }
        lengths = [len(bare.engine.encode(bare.context, q)) for bare in bares.values() for q in QUERIES]
        print(
            f"\n{mode}: prompts of {min(lengths)}-{max(lengths)} tokens, {args.context} messages before each"
        )
        times = asyncio.run(measure(servers, bares, args))
        rss = {k: rss_mib(s.pid) for k, s in servers.items()}
        capacity = print_tables(mode, times, rss, args)
        for k, server in servers.items():
            print(f"{k:<34} {batch_sizes(server.url)}")
        if args.baseline_tree is not None:
            print_against_baseline(mode, capacity, args)
        if mode != "greedy":
            return
        if args.poisson_requests:
            print_poisson(asyncio.run(poisson(servers, capacity, args)), capacity, args)
        if args.stream:
            urls = {k: s.url for k, s in servers.items()}
            rates = {k: 0.7 * capacity[k] for k in servers}
            figures = asyncio.run(
                stream_figures(urls, rates, str(model_dir), QUERIES, chat(args.context),
                               lone=args.repeat, count=args.stream_requests)
            )  # fmt: skip
            print_stream_table(figures, args.clients, args.stream_requests)
    finally:
        for server in servers.values():
            server.stop()


def main() -> None:
    args = parse_args()
    engines = {}
    for spec in args.engine or ["transformers", "ctranslate2"]:
        spec, _, replicas = spec.partition("+")
        name, _, compute = spec.partition(":")
        label = f"{name} {compute or DEFAULT_COMPUTE[name]}" + (f" +{replicas}" if replicas else "")
        engines[label] = (name, compute or DEFAULT_COMPUTE[name])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_HOME"] = str(Path(tmp) / "hf")  # conversions go here, converted before serving
        model_dir = Path(tmp) / "model"
        build_model(model_dir, args.small, layers_width=args.shape)
        from model_server.convert import converted_model

        for name, compute in engines.values():
            if name == "ctranslate2":
                converted_model(str(model_dir), compute)
        for mode in args.mode or list(MODES):
            run_mode(mode, model_dir, engines, args)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
