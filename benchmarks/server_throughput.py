"""Model server throughput against bare ``model.generate``, in one run.

Builds a random-weight GPT-2 of ruDialoGPT-medium's shape (24 layers, 1024
wide, 16 heads, vocab 50261), then measures with the same generation settings
(greedy, exactly ``--new-tokens`` new tokens, no early stop):

  bare generate, 1 prompt at a time     bare generate, 16 prompts in one call
  server over HTTP, 1 client            server over HTTP, 16 concurrent clients

The server is the real ``python -m model_server`` process (uvicorn, HTTP).
Targets: server(16) >= 4x server(1); server(16) >= 0.9x bare(16);
one request through HTTP <= 1.05x bare generate latency.

    python benchmarks/server_throughput.py                 # CPU, fp32
    python benchmarks/server_throughput.py --dtype bfloat16 --device cuda
    python benchmarks/server_throughput.py --small         # a quick dry run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialogue.format import serving_prompt  # noqa: E402
from model_server.generator import pick_device  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.tiny_model import build_tokenizer  # noqa: E402

QUERIES = [
    "привет, как дела?",
    "что ты сегодня делал вечером?",
    "посоветуй хороший фильм",
    "какая погода в Москве?",
    "ты любишь кофе или чай?",
    "расскажи что-нибудь интересное",
    "где лучше провести отпуск летом?",
    "как приготовить борщ?",
    "что почитать про космос?",
    "пойдём гулять в парк",
    "у меня кот заболел",
    "сколько будет два плюс два?",
    "какой у тебя любимый город?",
    "спокойной ночи",
    "кто идёт на встречу в субботу?",
    "напиши расписание поездов",
]


def build_model(out_dir: Path, small: bool) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = build_tokenizer()
    shape = dict(n_layer=2, n_embd=128, n_head=2) if small else dict(n_layer=24, n_embd=1024, n_head=16)
    config = GPT2Config(
        vocab_size=50261,
        n_positions=2048,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **shape,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def generation_env(new_tokens: int) -> dict[str, str]:
    # Exactly new_tokens tokens for every request: no EOS, no stop string.
    return {
        "GEN_DO_SAMPLE": "false",
        "GEN_NUM_BEAMS": "1",
        "GEN_MAX_NEW_TOKENS": str(new_tokens),
        "GEN_MIN_NEW_TOKENS": str(new_tokens),
        "GEN_STOP_STRINGS": "null",
        "GEN_NO_REPEAT_NGRAM_SIZE": "0",
        "GEN_REPETITION_PENALTY": "1.0",
    }


class BareGenerate:
    """``model.generate`` in this process, on prompts left-padded as the server pads them."""

    def __init__(self, model_dir: Path, args: argparse.Namespace) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = pick_device(args.device)
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.pad_token, self.tokenizer.padding_side = self.tokenizer.eos_token, "left"
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, args.dtype))
        self.model = model.to(self.device).eval()
        self.new_tokens = args.new_tokens

    def seconds(self, queries: list[str]) -> float:
        prompts = [serving_prompt([], q) for q in queries]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True).to(self.device)
        started = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                **enc,
                do_sample=False,
                num_beams=1,
                max_new_tokens=self.new_tokens,
                min_new_tokens=self.new_tokens,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] - enc["input_ids"].shape[1] == self.new_tokens
        return time.perf_counter() - started


async def server_seconds(client: httpx.AsyncClient, queries: list[str]) -> float:
    """Wall time until every query, each sent by its own client at once, is answered."""

    async def ask(query: str) -> None:
        response = await client.post("/answer", json={"query": query, "context": []})
        response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(ask(q) for q in queries))
    return time.perf_counter() - started


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def model_server(model_dir: Path, args: argparse.Namespace) -> Iterator[str]:
    """The real ``python -m model_server`` process, once it answers."""
    port = free_port()
    env = os.environ | generation_env(args.new_tokens)
    env |= {
        "MODEL_NAME_OR_PATH": str(model_dir),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DEVICE": args.device,
        "DTYPE": args.dtype,
        "MAX_BATCH_SIZE": str(args.clients),
        "LOG_LEVEL": "warning",
        "REQUEST_TIMEOUT_S": "600",
    }
    server = subprocess.Popen([sys.executable, "-m", "model_server"], env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("model server did not start")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(60)


async def generate_calls(client: httpx.AsyncClient) -> float:
    metrics = (await client.get("/metrics")).text
    found = re.search(r"^generate_batch_size_count (\S+)$", metrics, re.M)
    assert found, "no batch metrics"
    return float(found.group(1))


async def measure(bare: BareGenerate, url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per call of each path. The paths take turns round by round, so load
    from other processes on the machine falls on all of them alike."""
    batch = QUERIES[: args.clients]
    times: dict[str, list[float]] = {"bare1": [], "server1": [], "bare_batch": [], "server_concurrent": []}
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        # Warm-up of both; it also opens the clients' keep-alive connections.
        bare.seconds(batch)
        await server_seconds(client, batch)
        warm_calls = await generate_calls(client)
        for round_ in range(args.rounds):
            for i in range(args.repeat):
                query = batch[(round_ * args.repeat + i) % len(batch)]
                times["bare1"].append(bare.seconds([query]))
                times["server1"].append(await server_seconds(client, [query]))
            times["bare_batch"].append(bare.seconds(batch))
            times["server_concurrent"].append(await server_seconds(client, batch))
        calls = await generate_calls(client) - warm_calls
    times["mean_batch"] = [(args.rounds * (args.repeat + args.clients)) / calls]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all four measurements")
    parser.add_argument("--repeat", type=int, default=2, help="single requests per path and round")
    parser.add_argument("--small", action="store_true", help="a 2-layer model, to check the script")
    args = parser.parse_args()
    args.device = str(pick_device(args.device))

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        build_model(model_dir, args.small)
        with model_server(model_dir, args) as url:
            times = asyncio.run(measure(BareGenerate(model_dir, args), url, args))

    n = args.clients
    bare_single = statistics.median(times["bare1"])
    server_single = statistics.median(times["server1"])
    bare_batched = n / statistics.median(times["bare_batch"])
    server_concurrent = n / statistics.median(times["server_concurrent"])

    name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    rows = [
        ("bare generate, 1 prompt", 1 / bare_single, bare_single),
        (f"bare generate, {n} prompts in one call", bare_batched, n / bare_batched),
        ("server HTTP, 1 client", 1 / server_single, server_single),
        (f"server HTTP, {n} concurrent clients", server_concurrent, None),
    ]
    print(f"\nmedians of {args.rounds} interleaved rounds")
    print(
        f"{name}, {args.dtype}, {'small' if args.small else 'ruDialoGPT-medium shape'}, "
        f"greedy, {args.new_tokens} new tokens"
    )
    print(f"{'path':<40} {'requests/s':>11} {'s/call':>8}")
    for label, rps, seconds in rows:
        print(f"{label:<40} {rps:>11.3f} {'' if seconds is None else f'{seconds:8.3f}'}")
    checks = [
        (f"server {n} clients / server 1 client", server_concurrent * server_single, ">= 4.00"),
        (f"server {n} clients / bare batch {n}", server_concurrent / bare_batched, ">= 0.90"),
        ("server 1 request latency / bare generate", server_single / bare_single, "<= 1.05"),
        (f"bare batch {n} / bare 1 (reference)", bare_batched * bare_single, ""),
    ]
    ideal = (args.repeat + args.clients) / (args.repeat + 1)
    print(f"server: {times['mean_batch'][0]:.2f} requests per generate call (ideal {ideal:.2f})")
    print()
    for label, ratio, target in checks:
        print(f"{label:<44} {ratio:6.2f}x  {target}")


if __name__ == "__main__":
    main()
