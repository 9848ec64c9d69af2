"""Does the model use the context? Response perplexity with true, no and foreign context.

    python -m finetuning.evaluate --model_name_or_path outputs/rudialogpt-medium-chat
    python -m finetuning.evaluate --model_name_or_path DIR --data_file some.csv   # other rows, all of them

Pointed at a model this project trained, it scores that run's exact
validation rows (saved by training in the model directory); ``--data_file``
or ``--data_dir`` (the same flags as training's) scores every row given.

For each validation row the same response tokens (and EOS) are scored three
times, with the prompt built by the shared dialogue format from:

- ``true_context``: the row's own context messages;
- ``no_context``: no messages at all (only the response tag);
- ``shuffled_context``: the context of another row (a seeded derangement).

A model that uses the previous messages has a clearly lower perplexity with
the true context than with a shuffled one. Writes ``context_ablation.json``
and ``context_ablation.png`` to ``--output_dir`` (default ``<model>/eval``)
and ends with a one-line verdict (the rule: ``finetuning/verdict.py``).
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dialogue.model_facts import DialogueFacts, read_facts
from dialogue.model_source import loading_error, resolve_model_source
from finetuning.arguments import DataFiles, one_line_parser, parse_into, run_command
from finetuning.command_help import answer_help
from finetuning.data import (
    IGNORE_INDEX,
    DataError,
    data_files,
    ensure_pad_token,
    fit_max_length,
    load_dialogues,
    make_collator,
)
from finetuning.data import encode_dialogue as encode
from finetuning.validation_rows import VALIDATION_ROWS_FILE, saved_validation_rows
from finetuning.verdict import context_verdict

logger = logging.getLogger("finetuning.evaluate")

CONDITIONS = ("true_context", "no_context", "shuffled_context")
SETTING = "--model_name_or_path"
PROG = "python -m finetuning.evaluate"


@dataclass
class EvalArguments:
    model_name_or_path: str = field(metadata={"help": "Fine-tuned model directory or hub id."})
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where the JSON and the PNG go (default: <model>/eval, outputs/eval/<id> for a hub id)."
        },
    )
    seed: int = field(default=42, metadata={"help": "Seed of the shuffling of contexts."})
    context_size: int | None = field(
        default=None, metadata={"help": "Default: the model's dialogue.json, else the format's (3)."}
    )
    max_length: int | None = field(
        default=None, metadata={"help": "Default and at most: the model's positions."}
    )
    batch_size: int = field(default=16)
    max_samples: int | None = field(default=None, metadata={"help": "Score only the first N rows."})


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


def rows_to_score(source: str, data: DataFiles, max_samples: int | None) -> list[tuple[list[str], str]]:
    """The rows named by --data_file / --data_dir, else the validation rows saved with the model."""
    saved = saved_validation_rows(source)
    if data.data_file or data.data_dir:
        files = data_files(data.data_dir, data.data_file)
        if saved is not None:
            logger.warning("scoring the rows given, not the training run's validation rows (%s)", saved)
    elif saved is not None:
        files = [saved]
    else:
        raise DataError(
            f"{source} carries no validation rows ({VALIDATION_ROWS_FILE}, written by training): "
            "give --data_file FILE.csv or --data_dir DIR"
        )
    dialogues = load_dialogues(files, cache_dir=data.dataset_cache_dir)
    if max_samples is not None:
        dialogues = dialogues.select(range(min(max_samples, len(dialogues))))
    return list(zip(dialogues["messages"], dialogues["response"], strict=True))


def default_output_dir(name: str) -> Path:
    """``<model>/eval`` for a local model; a hub id gets its own folder under outputs/eval."""
    local = Path(name).expanduser()
    return local / "eval" if local.is_dir() else Path("outputs", "eval", name.replace("/", "--"))


def load_for_scoring(name: str, source: str) -> tuple[Any, Any]:
    """The tokenizer and the model of ``source``, in eval mode, on the GPU (bf16 where it has it) if any."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as error:
        raise loading_error(name, SETTING, error) from error
    ensure_pad_token(tokenizer)
    model.to(device).eval()
    return tokenizer, model


def evaluate(args: EvalArguments, data: DataFiles) -> dict[str, Any]:
    from finetuning.plots import plot_ablation

    # The model and its facts: the context size it was trained with, max_length within its positions.
    source = resolve_model_source(args.model_name_or_path, SETTING)
    facts = read_facts(source)
    context_size = (
        args.context_size if args.context_size is not None else (facts or DialogueFacts()).context_size
    )
    rows = rows_to_score(source, data, args.max_samples)
    tokenizer, model = load_for_scoring(args.model_name_or_path, source)
    max_length = fit_max_length(
        args.max_length or sys.maxsize, model.config, note=args.max_length is not None
    )

    # The same response tokens scored after the true, no, and another row's context.
    samples = build_conditions(
        tokenizer, rows, context_size=context_size, max_length=max_length, seed=args.seed
    )
    n = len(samples["true_context"])
    if n == 0:
        raise DataError("no row could be scored (empty responses, or longer than max_length)")
    n_tokens = sum(sum(1 for t in s["labels"] if t != IGNORE_INDEX) for s in samples["true_context"])
    collator = make_collator(tokenizer)
    nll = {c: response_nll(model, collator, samples[c], args.batch_size) for c in CONDITIONS}
    verdict = context_verdict(nll["true_context"], nll["shuffled_context"], n_tokens)

    # Results: JSON, a bar chart, and the verdict.
    results: dict[str, Any] = {
        "model": args.model_name_or_path,
        "context_size": context_size,
        "samples": n,
        "rows_skipped": len(rows) - n,
        "response_tokens": n_tokens,
        "conditions": {
            c: {"loss": sum(v) / n_tokens, "perplexity": math.exp(sum(v) / n_tokens)} for c, v in nll.items()
        },
        # Per dialogue: how often the true context makes the response more likely than a foreign one.
        "true_beats_shuffled": verdict.wins / n,
        "verdict": asdict(verdict),
    }
    out_dir = Path(args.output_dir) if args.output_dir else default_output_dir(args.model_name_or_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "context_ablation.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot_ablation(
        {c: r["perplexity"] for c, r in results["conditions"].items()},
        out_dir / "context_ablation.png",
        title=f"{n} validation dialogues",
    )
    results["output_dir"] = str(out_dir)
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    summary, _, details = (__doc__ or "").replace("``", "").partition("\n\n")
    answer_help(argv, (EvalArguments, DataFiles), PROG, summary, details)
    parser = one_line_parser((EvalArguments, DataFiles), prog=PROG)
    args, data = parse_into(parser, argv)
    results = evaluate(args, data)
    for c, r in results["conditions"].items():
        logger.info("%-17s perplexity %.3f", c, r["perplexity"])
    logger.info(
        "%d dialogues, %d response tokens; written to %s",
        results["samples"],
        results["response_tokens"],
        results["output_dir"],
    )
    print(results["verdict"]["line"], flush=True)
    return results


if __name__ == "__main__":
    sys.exit(run_command("evaluate", main, None))
