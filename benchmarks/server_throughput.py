"""Model server throughput per engine, against each engine's bare batched call, in one run.

    python -m benchmarks.server_throughput --engine transformers --engine ctranslate2
    python -m benchmarks.server_throughput --engine transformers --engine ctranslate2:float32 --rounds 3
    python -m benchmarks.server_throughput --small --rounds 1     # a quick dry run of the script
    python -m benchmarks.server_throughput --context 3            # each query after 3 messages

A random-weight GPT-2 of ruDialoGPT-medium's shape (24 layers, 1024 wide, 16
heads, vocab 50261; the tokenizer is the tests' small one, so the embedding has
more rows than the tokenizer has tokens) answers with settings both engines
honour: greedy, and the model card's sampling with one beam. Tokens that hold
"@" and EOS get zero embeddings, so no answer stops early: every request is
``--new-tokens`` tokens on every path. By default a request is its query alone;
``--context N`` puts the last N messages of a short chat before it, as the bot
does (how fast an engine reads a prompt shows there).

Each engine runs as a real ``python -m model_server`` process (its peak RSS is
its own), and the engines take turns round by round, so load from other
processes falls on all of them alike. Printed per mode and engine: requests/s
at 1 and at ``--clients`` concurrent clients, the bare batched call, peak RSS,
and ratios against the first engine (transformers fp32). Then Poisson arrivals
at 70% of each engine's measured capacity: what a user waits under real traffic.

Targets on a CPU: CTranslate2 int8 >= 2.5x requests/s at 1 and 16 clients and
peak RSS <= 0.6x of transformers fp32; server(16) >= 0.9x bare batched (16).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.server_processes import ModelServer, rss_mib
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


def build_model(out_dir: Path, small: bool, seed: int = 0) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tokenizer()
    shape = dict(n_layer=2, n_embd=128, n_head=2) if small else dict(n_layer=24, n_embd=1024, n_head=16)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=50261, n_positions=1024, bos_token_id=eos, eos_token_id=eos, **shape)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # tied: a zero row gets logit 0, below the top of 50261 random logits
        for token_id in [i for t, i in tokenizer.get_vocab().items() if "@" in t] + [eos]:
            model.transformer.wte.weight[token_id] = 0
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


class Bare:
    """One engine's own batched call in this process, with the server's settings and prompts."""

    def __init__(
        self,
        engine: str,
        compute_type: str,
        model_dir: Path,
        mode: dict[str, Any],
        new_tokens: int,
        context: list[dict[str, str]],
    ):
        from dialogue.format import Turn
        from model_server.loading import load_engine
        from model_server.settings import GenerationSettings, Settings

        gen = GenerationSettings(**mode, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
        settings = Settings(
            model_name_or_path=str(model_dir), engine=engine, engine_compute_type=compute_type
        )
        self.engine: Any = load_engine(settings.model_copy(update={"generation": gen}))
        self.mode, self.new_tokens, self.kind = mode, new_tokens, engine
        self.context = [Turn(t["role"], t["text"]) for t in context]  # type: ignore[arg-type]
        if engine == "transformers":  # the bare call: no stop strings (no answer stops early anyway)
            self.config = self.engine.generation_config
            self.config.stop_strings = self.config.max_time = None

    def seconds(self, queries: list[str]) -> float:
        import torch

        prompts = [self.engine.encode(self.context, q) for q in queries]
        started = time.perf_counter()
        if self.kind == "transformers":
            width = max(len(p) for p in prompts)
            pad = self.engine.pad_token_id
            ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
            mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
            with torch.inference_mode():
                out = self.engine.model.generate(
                    input_ids=ids, attention_mask=mask, generation_config=self.config
                )
            assert out.shape[1] - width == self.new_tokens
        else:
            tokens = [self.engine.tokenizer.convert_ids_to_tokens(p) for p in prompts]
            results = self.engine.generator.generate_batch(
                tokens, max_length=self.new_tokens, include_prompt_in_result=False, **self.engine.options
            )
            assert len(results[0].sequences_ids[0]) >= self.new_tokens
        return time.perf_counter() - started


async def concurrent_seconds(client: httpx.AsyncClient, queries: list[str], context: list[dict]) -> float:
    """Wall time until every query, each sent by its own client at once, is answered."""

    async def ask(query: str) -> None:
        (await client.post("/answer", json={"query": query, "context": context})).raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(ask(q) for q in queries))
    return time.perf_counter() - started


async def poisson_latencies(
    client: httpx.AsyncClient, rate: float, count: int, seed: int, context: list[dict]
) -> list[float]:
    """Requests arriving as a Poisson process of ``rate`` per second; each one's latency."""
    rng = random.Random(seed)
    latencies: list[float] = []

    async def ask(query: str) -> None:
        started = time.perf_counter()
        (await client.post("/answer", json={"query": query, "context": context})).raise_for_status()
        latencies.append(time.perf_counter() - started)

    tasks = []
    for i in range(count):
        tasks.append(asyncio.create_task(ask(QUERIES[i % len(QUERIES)])))
        await asyncio.sleep(rng.expovariate(rate))
    await asyncio.gather(*tasks)
    return latencies


async def measure(
    servers: dict[str, ModelServer], bares: dict[str, Bare], args: argparse.Namespace
) -> dict[str, dict[str, list[float]]]:
    """Seconds per call of each path of each engine; engines and paths take turns every round."""
    batch = QUERIES[: args.clients]
    context = chat(args.context)
    times = {name: {"server1": [], "server_n": [], "bare_n": []} for name in servers}
    clients = {name: httpx.AsyncClient(base_url=s.url, timeout=900) for name, s in servers.items()}
    # Warm-up, a full batch on each path: a fresh process's first batch of a new
    # size runs up to 40% slower (its memory is mapped afresh), which counted
    # against the server, started just before. It also opens the connections.
    for name in servers:
        bares[name].seconds(batch)
        await concurrent_seconds(clients[name], batch, context)
    for round_ in range(args.rounds):
        for name in servers:
            for i in range(args.repeat):
                query = [batch[(round_ * args.repeat + i) % len(batch)]]
                times[name]["server1"].append(await concurrent_seconds(clients[name], query, context))
            times[name]["server_n"].append(await concurrent_seconds(clients[name], batch, context))
            times[name]["bare_n"].append(bares[name].seconds(batch))
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
            rate = 0.7 * capacity[name]
            out[name] = await poisson_latencies(client, rate, args.poisson_requests, 1, chat(args.context))
    return out


def print_tables(mode: str, times: dict, rss: dict[str, float], args: argparse.Namespace) -> dict[str, float]:
    n, base = args.clients, next(iter(times))
    one = {k: 1 / statistics.median(v["server1"]) for k, v in times.items()}
    many = {k: n / statistics.median(v["server_n"]) for k, v in times.items()}
    bare = {k: n / statistics.median(v["bare_n"]) for k, v in times.items()}
    print(
        f"\n{mode}: requests/s, medians of {args.rounds} interleaved rounds "
        f"({args.repeat} single requests each), {args.new_tokens} new tokens"
    )
    print(f"{'engine':<26} {'1 client':>9} {f'{n} clients':>11} {f'bare {n}':>8} {'srv/bare':>9} "
          f"{'x1 vs base':>10} {f'x{n} vs base':>11} {'peak RSS':>10} {'RSS x':>6}")  # fmt: skip
    for k in times:
        print(
            f"{k:<26} {one[k]:>9.3f} {many[k]:>11.3f} {bare[k]:>8.3f} {many[k] / bare[k]:>9.2f} "
            f"{one[k] / one[base]:>10.2f} {many[k] / many[base]:>11.2f} "
            f"{rss[k]:>7.0f} MiB {rss[k] / rss[base]:>6.2f}"
        )
    return many


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engine", action="append", help="NAME[:COMPUTE_TYPE]; the first is the baseline")
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
    args = parser.parse_args()
    engines = {}
    for spec in args.engine or ["transformers", "ctranslate2"]:
        name, _, compute = spec.partition(":")
        engines[f"{name} {compute or DEFAULT_COMPUTE[name]}"] = (name, compute or DEFAULT_COMPUTE[name])
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_HOME"] = str(Path(tmp) / "hf")  # conversions go here, converted before serving
        model_dir = Path(tmp) / "model"
        build_model(model_dir, args.small)
        from model_server.convert import converted_model

        for name, compute in engines.values():
            if name == "ctranslate2":
                converted_model(str(model_dir), compute)
        for mode in args.mode or list(MODES):
            env = {
                f"GEN_{k.upper()}": str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in MODES[mode].items()
            }
            env |= {"GEN_MAX_NEW_TOKENS": str(args.new_tokens), "GEN_MIN_NEW_TOKENS": str(args.new_tokens)}
            servers = {k: ModelServer(model_dir, e, c, env, args.clients) for k, (e, c) in engines.items()}
            try:
                bares = {
                    k: Bare(e, c, model_dir, MODES[mode], args.new_tokens, chat(args.context))
                    for k, (e, c) in engines.items()
                }
                lengths = [
                    len(bare.engine.encode(bare.context, q)) for bare in bares.values() for q in QUERIES
                ]
                print(
                    f"\n{mode}: prompts of {min(lengths)}-{max(lengths)} tokens, "
                    f"{args.context} messages before the query"
                )
                times = asyncio.run(measure(servers, bares, args))
                rss = {k: rss_mib(s.pid) for k, s in servers.items()}
                capacity = print_tables(mode, times, rss, args)
                for k, server in servers.items():
                    print(f"{k:<26} {batch_sizes(server.url)}")
                if mode == "greedy" and args.poisson_requests:
                    waits = asyncio.run(poisson(servers, capacity, args))
                    print(f"\nPoisson arrivals at 70% of each engine's {args.clients}-client capacity, "
                          f"{args.poisson_requests} requests, greedy")  # fmt: skip
                    for k, w in waits.items():
                        q = statistics.quantiles(w, n=20)
                        print(f"{k:<26} {0.7 * capacity[k]:>6.3f} req/s  p50 {statistics.median(w):6.2f} s  "
                              f"p95 {q[18]:6.2f} s")  # fmt: skip
            finally:
                for server in servers.values():
                    server.stop()
                del bares
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
