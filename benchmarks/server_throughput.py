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
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialogue.format import serving_prompt  # noqa: E402
from model_server.generator import pick_device  # noqa: E402
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


def bare_generate(model_dir: Path, args: argparse.Namespace) -> tuple[float, float]:
    """Seconds per prompt alone, and requests/s with all prompts in one call."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(args.device)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    dtype = getattr(torch, args.dtype)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device).eval()
    prompts = [serving_prompt([], q) for q in QUERIES[: args.clients]]
    kwargs = dict(
        do_sample=False,
        num_beams=1,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        pad_token_id=tokenizer.eos_token_id,
    )

    def run(batch: list[str]) -> float:
        enc = tokenizer(batch, return_tensors="pt", padding=True).to(device)
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] - enc["input_ids"].shape[1] == args.new_tokens
        return time.perf_counter() - started

    run(prompts[:1])  # warm-up
    single = [run([p]) for p in prompts[: args.repeat]]
    batched = [run(prompts) for _ in range(args.batch_repeat)]
    return sum(single) / len(single), len(prompts) / (sum(batched) / len(batched))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure_server(url: str, args: argparse.Namespace) -> tuple[float, float]:
    """Seconds per request from one client, and requests/s from many concurrent clients."""
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def ask(query: str) -> None:
            response = await client.post("/answer", json={"query": query, "context": []})
            response.raise_for_status()

        await ask(QUERIES[0])  # warm-up
        started = time.perf_counter()
        for query in QUERIES[: args.repeat]:
            await ask(query)
        single = (time.perf_counter() - started) / args.repeat

        async def client_loop(query: str) -> None:
            for _ in range(args.batch_repeat):
                await ask(query)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(q) for q in QUERIES[: args.clients]))
        throughput = args.clients * args.batch_repeat / (time.perf_counter() - started)
    return single, throughput


def run_server(model_dir: Path, args: argparse.Namespace) -> tuple[float, float]:
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
        while httpx.get(f"{url}/health").status_code != 200 if _listening(url) else True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("model server did not start")
            time.sleep(0.5)
        return asyncio.run(measure_server(url, args))
    finally:
        server.terminate()
        server.wait(60)


def _listening(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=5)
        return True
    except httpx.TransportError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--new-tokens", type=int, default=40)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="single requests measured")
    parser.add_argument("--batch-repeat", type=int, default=2, help="requests per concurrent client")
    parser.add_argument("--small", action="store_true", help="a 2-layer model, to check the script")
    args = parser.parse_args()
    args.device = str(pick_device(args.device))

    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        build_model(model_dir, args.small)
        bare_single, bare_batched = bare_generate(model_dir, args)
        server_single, server_concurrent = run_server(model_dir, args)

    name = (
        torch.cuda.get_device_name()
        if args.device.startswith("cuda")
        else f"CPU, {torch.get_num_threads()} threads"
    )
    n = args.clients
    rows = [
        ("bare generate, 1 prompt", 1 / bare_single, bare_single),
        (f"bare generate, {n} prompts in one call", bare_batched, n / bare_batched),
        ("server HTTP, 1 client", 1 / server_single, server_single),
        (f"server HTTP, {n} concurrent clients", server_concurrent, None),
    ]
    print(
        f"\n{name}, {args.dtype}, {'small' if args.small else 'ruDialoGPT-medium shape'}, "
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
    print()
    for label, ratio, target in checks:
        print(f"{label:<44} {ratio:6.2f}x  {target}")


if __name__ == "__main__":
    main()
