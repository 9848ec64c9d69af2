"""What re-forming a running CTranslate2 batch would cost: the measurement behind ENGINE_REPLICAS.

    python -m benchmarks.ctranslate2_rebatching [--shape 6x512 | --small] [--rounds 2] [--rows 16]

CTranslate2 cannot add a request to a running ``generate_batch`` (its issue
1333). Chunked decoding would stop the batch every K steps and start it again
with the newcomers, each old row re-reading its prompt and the tokens it has
so far. This times, bare and in-process on the server's int8 engine and the
bot's prompt shape (3 messages before each query, 40 tokens), one call for
``--rows`` rows against the same tokens decoded in chunks of 8 and of 4, and
one re-form on its own; the ratios are against the one call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.server_throughput import MODES, QUERIES, build_model, chat
from benchmarks.support.bare_engine import Bare

NEW_TOKENS = 40


def timed(generator: Any, rows: list[list[str]], tokens: int, options: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    results = generator.generate_batch(
        rows, max_length=tokens, min_length=tokens, include_prompt_in_result=False, **options
    )
    return time.perf_counter() - started, results


def chunked(generator: Any, prompts: list[list[str]], chunk: int, options: dict[str, Any]) -> float:
    """NEW_TOKENS decoded ``chunk`` at a time, every row re-read at each chunk."""
    rows, seconds = [list(p) for p in prompts], 0.0
    for done in range(0, NEW_TOKENS, chunk):
        took, results = timed(generator, rows, min(chunk, NEW_TOKENS - done), options)
        seconds += took
        for row, result in zip(rows, results, strict=True):
            row += result.sequences[0]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="a 2-layer model, to check the script")
    parser.add_argument("--shape", help="LAYERSxWIDTH, e.g. 6x512; default ruDialoGPT-medium's 24x1024")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=16)
    args = parser.parse_args()
    model_dir = Path(tempfile.mkdtemp()) / "model"
    build_model(model_dir, args.small, layers_width=args.shape)
    bare = Bare("ctranslate2", "int8", model_dir, MODES["greedy"], NEW_TOKENS, chat(3))
    engine = bare.engine
    options = {k: v for k, v in engine.options.items() if k not in ("max_length", "min_length")}
    queries = (QUERIES * args.rows)[: args.rows]
    prompts = [engine.tokenizer.convert_ids_to_tokens(engine.encode(bare.context, q)) for q in queries]
    timed(engine.generator, prompts[:1], NEW_TOKENS, options)  # warm-up
    figures: dict[str, list[float]] = {}
    generator = engine.generator
    for _ in range(args.rounds):
        figures.setdefault("one call", []).append(timed(generator, prompts, NEW_TOKENS, options)[0])
        for chunk in (8, 4):
            figures.setdefault(f"chunks of {chunk}", []).append(chunked(generator, prompts, chunk, options))
        # A re-form half-way: every row re-reads its prompt and 20 tokens for its next one.
        halfway = [p + p[-1:] * (NEW_TOKENS // 2) for p in prompts]
        figures.setdefault("one re-form", []).append(timed(generator, halfway, 1, options)[0])
    one = statistics.median(figures["one call"])
    print(f"\nCTranslate2 int8, {args.rows} rows of {min(map(len, prompts))}-{max(map(len, prompts))} prompt "
          f"tokens, {NEW_TOKENS} new tokens, medians of {args.rounds} rounds")  # fmt: skip
    print("| decoding | seconds | against one call |")
    print("| --- | ---: | ---: |")
    for label, seconds in figures.items():
        median = statistics.median(seconds)
        print(f"| {label} | {median:.2f} | {median / one:.2f}x |")


if __name__ == "__main__":
    main()
