"""Does the model use the context? Response perplexity with true, no and foreign context.

    python -m finetuning.evaluate --model_name_or_path outputs/rudialogpt-medium-chat \\
        --data_dir data_output --output_dir outputs/eval          # the training run's validation rows
    python -m finetuning.evaluate --model_name_or_path DIR --data_file some.csv --output_dir outputs/eval

For each validation row the same response tokens (and EOS) are scored three
times, with the prompt built by the shared dialogue format from:

- ``true_context``: the row's own context messages;
- ``no_context``: no messages at all (only the response tag);
- ``shuffled_context``: the context of another row (a seeded derangement).

A model that uses the previous messages has a clearly lower perplexity with
the true context than with a shuffled one. Writes ``context_ablation.json``
and ``context_ablation.png`` to the output directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialogue.format import CONTEXT_SIZE
from finetuning.data import (
    IGNORE_INDEX,
    ensure_pad_token,
    find_csv_files,
    load_dialogues,
    make_collator,
    split_dialogues,
)
from finetuning.data import encode_dialogue as encode

logger = logging.getLogger("finetuning.evaluate")

CONDITIONS = ("true_context", "no_context", "shuffled_context")


@dataclass
class EvalArguments:
    model_name_or_path: str = field(metadata={"help": "Fine-tuned model directory or hub id."})
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where the JSON and the PNG go."})
    data_file: list[str] | None = field(
        default=None,
        metadata={"help": "Validation CSV(s), used whole. Without it: the training run's validation split."},
    )
    data_dir: str = field(
        default="data_output", metadata={"help": "CSVs of the training run (no --data_file)."}
    )
    validation_split_percentage: float = field(default=5.0, metadata={"help": "As in training."})
    seed: int = field(default=42, metadata={"help": "Training seed (split) and the shuffling of contexts."})
    context_size: int = field(default=CONTEXT_SIZE)
    max_length: int = field(default=512)
    batch_size: int = field(default=16)
    max_samples: int | None = field(default=None, metadata={"help": "Score only the first N rows."})
    dataset_cache_dir: str | None = field(default=None)


def derangement(n: int, seed: int) -> list[int]:
    """donor[i] != i for every i: row i gets the context of row donor[i].

    A cycle through a random order, so a row rarely gets a neighbour's context
    (neighbouring rows of one chat share messages).
    """
    if n < 2:
        raise ValueError("need at least 2 rows to swap contexts")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    donor = [0] * n
    for k, i in enumerate(order):
        donor[i] = order[(k + 1) % n]
    return donor


def build_conditions(
    tokenizer: Any,
    rows: Sequence[tuple[list[str], str]],
    *,
    context_size: int,
    max_length: int,
    seed: int,
) -> dict[str, list[dict[str, list[int]]]]:
    """Encoded samples per condition; a row is kept only if every condition can encode it."""
    donor = derangement(len(rows), seed)
    out: dict[str, list[dict[str, list[int]]]] = {c: [] for c in CONDITIONS}
    for i, (messages, response) in enumerate(rows):
        contexts = {
            "true_context": messages,
            "no_context": [],
            "shuffled_context": rows[donor[i]][0],
        }
        encoded = {
            c: encode(tokenizer, ctx, response, context_size=context_size, max_length=max_length)
            for c, ctx in contexts.items()
        }
        if any(e is None for e in encoded.values()):
            continue
        for c, e in encoded.items():
            assert e is not None
            out[c].append(
                {"input_ids": e.input_ids, "labels": e.labels, "attention_mask": [1] * len(e.labels)}
            )
    return out


def response_nll(
    model: Any, collator: Any, samples: list[dict[str, list[int]]], batch_size: int
) -> list[float]:
    """Summed negative log-likelihood of the labelled (response) tokens, one number per sample."""
    import torch

    device = next(model.parameters()).device
    totals: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            batch = collator(samples[start : start + batch_size])
            logits = model(
                input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
            ).logits.float()
            labels = batch["labels"].to(device)[:, 1:]
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            mask = labels != IGNORE_INDEX
            token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            totals.extend((-(token_logp * mask).sum(dim=1)).tolist())
    return totals


def load_rows(args: EvalArguments) -> list[tuple[list[str], str]]:
    if args.data_file:
        dialogues = load_dialogues([Path(p) for p in args.data_file], cache_dir=args.dataset_cache_dir)
    else:
        all_rows = load_dialogues(find_csv_files(args.data_dir), cache_dir=args.dataset_cache_dir)
        _, dialogues = split_dialogues(all_rows, args.validation_split_percentage / 100, args.seed)
    if args.max_samples is not None:
        dialogues = dialogues.select(range(min(args.max_samples, len(dialogues))))
    return list(zip(dialogues["messages"], dialogues["response"], strict=True))


def evaluate(args: EvalArguments) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetuning.plots import plot_ablation

    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    ensure_pad_token(tokenizer)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model: Any = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, dtype=dtype)
    model.to(device).eval()

    rows = load_rows(args)
    samples = build_conditions(
        tokenizer, rows, context_size=args.context_size, max_length=args.max_length, seed=args.seed
    )
    n = len(samples["true_context"])
    if n == 0:
        raise SystemExit("no row could be scored (empty responses, or longer than max_length)")
    # Response tokens are the same in every condition: only the prompt differs.
    n_tokens = sum(sum(1 for t in s["labels"] if t != IGNORE_INDEX) for s in samples["true_context"])
    collator = make_collator(tokenizer)
    nll = {c: response_nll(model, collator, samples[c], args.batch_size) for c in CONDITIONS}

    results: dict[str, Any] = {
        "model": args.model_name_or_path,
        "samples": n,
        "rows_skipped": len(rows) - n,
        "response_tokens": n_tokens,
        "conditions": {
            c: {"loss": sum(v) / n_tokens, "perplexity": math.exp(sum(v) / n_tokens)} for c, v in nll.items()
        },
        # Per dialogue: how often the true context makes the response more likely than a foreign one.
        "true_beats_shuffled": sum(
            t < s for t, s in zip(nll["true_context"], nll["shuffled_context"], strict=True)
        )
        / n,
    }
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "context_ablation.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot_ablation(
        {c: r["perplexity"] for c, r in results["conditions"].items()},
        out_dir / "context_ablation.png",
        title=f"{n} validation dialogues",
    )
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (args,) = HfArgumentParser(typing.cast(Any, EvalArguments)).parse_args_into_dataclasses(
        args=list(sys.argv[1:] if argv is None else argv)
    )
    results = evaluate(args)
    for c, r in results["conditions"].items():
        logger.info("%-17s perplexity %.3f", c, r["perplexity"])
    logger.info(
        "%d dialogues, %d response tokens; true context beats a shuffled one in %.0f%% of dialogues; "
        "written to %s",
        results["samples"],
        results["response_tokens"],
        100 * results["true_beats_shuffled"],
        args.output_dir,
    )
    return results


if __name__ == "__main__":
    main()
