"""Prepared CSVs → tokenised training samples with the loss on the responses.

A row of a prepared CSV (finetuning.training_csv) becomes one sample whose
text is exactly :func:`dialogue.format.training_text` — the serving prompt,
the response and EOS. ``labels`` is ``-100`` over the prompt (unless the
whole text is trained on) and over padding; the EOS after the response stays
a label, so the model learns to stop even though EOS doubles as the pad token.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialogue.format import CONTEXT_SIZE, normalize, training_prompt, training_text
from dialogue.model_facts import position_count
from finetuning.training_csv import RESPONSE_COLUMN, context_columns

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # labels the loss skips (PyTorch's cross-entropy default)


class DataError(ValueError):
    """A CSV the training cannot use; the message names the file and the reason."""


def find_csv_files(data_dir: str | Path) -> list[Path]:
    """Every ``*.csv`` in ``data_dir``, sorted so the sample order is reproducible."""
    directory = Path(data_dir)
    if not directory.is_dir():
        raise DataError(f"{directory}: data directory does not exist")
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise DataError(f"{directory}: no *.csv files (prepare them with python -m finetuning.prepare)")
    return files


def data_files(data_dir: str | None, data_file: Sequence[str] | None) -> list[Path]:
    """The CSVs named by ``--data_file``, else every CSV in ``--data_dir``."""
    if data_file:
        missing = [p for p in data_file if not Path(p).is_file()]
        if missing:
            raise DataError(f"{missing[0]}: data file does not exist")
        return [Path(p) for p in data_file]
    if not data_dir:
        raise DataError("no data: give --data_dir DIR or --data_file FILE.csv")
    return find_csv_files(data_dir)


def fit_max_length(max_length: int, model_config: Any, note: bool = True) -> int:
    """``max_length`` clamped to the model's positions: past them GPT-2 fails mid-run (IndexError)."""
    positions = position_count(model_config)
    if positions and max_length > positions:
        if not note:
            return positions
        logger.warning(
            "max_length %d is more than the model's %d positions: using %d", max_length, positions, positions
        )
        return positions
    return max_length


def checked_context_columns(header: Sequence[str], path: Path | str = "CSV") -> list[str]:
    """``context_N`` columns of a header, oldest first; checks ``response`` is there."""
    if RESPONSE_COLUMN not in header:
        raise DataError(f"{path}: no '{RESPONSE_COLUMN}' column (header: {', '.join(header)})")
    return context_columns(header)


def read_header(path: Path) -> list[str]:
    # utf-8-sig: a CSV saved by Excel starts with a byte-order mark, which is not part of the first name.
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise DataError(f"{path}: empty file, expected a header row")
    return header


def load_dialogues(files: Sequence[Path], cache_dir: str | None = None) -> Any:
    """A ``datasets.Dataset`` of the rows of ``files`` with columns ``messages`` and ``response``.

    Every cell is read as a string (a message "42" stays text) and empty
    cells stay empty strings, not NaN. Files may have different context
    widths; they are aligned on the newest message.
    """
    import datasets

    if not files:
        raise DataError("no CSV files given")
    widths = {path: checked_context_columns(read_header(path), path) for path in files}
    parts = []
    for path, columns in widths.items():
        features = datasets.Features({name: datasets.Value("string") for name in read_header(path)})
        part = datasets.load_dataset(
            "csv",
            data_files=str(path),
            split="train",
            features=features,
            keep_default_na=False,
            cache_dir=cache_dir,
        )
        parts.append(
            part.map(
                _to_messages,
                fn_kwargs={"columns": columns},
                remove_columns=part.column_names,
                desc=f"reading {path.name}",
            )
        )
    return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)


def _to_messages(row: dict[str, str | None], columns: list[str]) -> dict[str, Any]:
    return {
        "messages": [row[c] or "" for c in columns],
        "response": row[RESPONSE_COLUMN] or "",
    }


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    dropped_context: int  # oldest messages cut to fit max_length


def encode_dialogue(
    tokenizer: Any,
    messages: Sequence[str],
    response: str,
    *,
    context_size: int = CONTEXT_SIZE,
    max_length: int = 512,
    train_on_context: bool = False,
) -> Encoded | None:
    """Token ids and labels of one dialogue, or ``None`` when it cannot be a sample.

    ``None`` for an empty response, or when the response does not fit
    ``max_length`` together with at least the newest context message (a
    response without what it answers only teaches noise). Over-long samples
    lose their OLDEST context messages first; the response is never cut.
    """
    if not normalize(response):
        return None
    eos = tokenizer.eos_token
    context = [m for m in messages if normalize(m)][-context_size:]
    # The response part is " response<eos>"; it does not depend on the context, so encode it once.
    # Token ids are prompt ids + response ids: exactly what the model sees when serving (the prompt
    # tokenised alone, then the generated tokens). For BPE tokenizers this equals tokenising the text.
    prompt = training_prompt(context, context_size)
    text = training_text(context, response, eos, context_size)
    if not text.startswith(prompt):
        raise AssertionError("dialogue.format: the training prompt must be a prefix of the training text")
    response_ids = tokenizer(text[len(prompt) :], add_special_tokens=False)["input_ids"]
    min_context = 1 if context else 0
    for dropped in range(len(context) - min_context + 1):
        prompt_ids = tokenizer(training_prompt(context[dropped:], context_size), add_special_tokens=False)[
            "input_ids"
        ]
        if len(prompt_ids) + len(response_ids) <= max_length:
            prompt_labels = list(prompt_ids) if train_on_context else [IGNORE_INDEX] * len(prompt_ids)
            return Encoded(
                input_ids=[*prompt_ids, *response_ids],
                labels=[*prompt_labels, *response_ids],
                dropped_context=dropped,
            )
    return None


def tokenize_batch(
    batch: dict[str, list[Any]],
    tokenizer: Any,
    context_size: int,
    max_length: int,
    train_on_context: bool,
) -> dict[str, list[Any]]:
    """``datasets.map(batched=True)`` function: rows that cannot be samples are left out."""
    out: dict[str, list[Any]] = {
        "input_ids": [],
        "attention_mask": [],
        "labels": [],
        "length": [],
        "dropped_context": [],
    }
    for messages, response in zip(batch["messages"], batch["response"], strict=True):
        encoded = encode_dialogue(
            tokenizer,
            messages,
            response,
            context_size=context_size,
            max_length=max_length,
            train_on_context=train_on_context,
        )
        if encoded is None:
            continue
        out["input_ids"].append(encoded.input_ids)
        out["attention_mask"].append([1] * len(encoded.input_ids))
        out["labels"].append(encoded.labels)
        out["length"].append(len(encoded.input_ids))
        out["dropped_context"].append(encoded.dropped_context)
    return out


def tokenize_dialogues(
    dialogues: Any,
    tokenizer: Any,
    *,
    context_size: int = CONTEXT_SIZE,
    max_length: int = 512,
    train_on_context: bool = False,
    num_proc: int | None = None,
) -> Any:
    """Samples with ``input_ids``, ``attention_mask``, ``labels``, ``length``; logs what was dropped."""
    samples = dialogues.map(
        tokenize_batch,
        batched=True,
        remove_columns=dialogues.column_names,
        num_proc=num_proc,
        fn_kwargs={
            "tokenizer": tokenizer,
            "context_size": context_size,
            "max_length": max_length,
            "train_on_context": train_on_context,
        },
        desc="tokenising dialogues",
    )
    truncated = sum(1 for n in samples["dropped_context"] if n)
    logger.info(
        "samples: kept %d of %d rows; dropped %d (empty response, or too long for max_length=%d "
        "even with one context message); oldest context cut in %d",
        len(samples),
        len(dialogues),
        len(dialogues) - len(samples),
        max_length,
        truncated,
    )
    if len(samples) == 0:
        raise DataError("no usable rows: every row has an empty response or is longer than max_length")
    return samples.remove_columns("dropped_context")


def split_dialogues(dialogues: Any, validation_fraction: float, seed: int) -> tuple[Any, Any]:
    """Seeded train / validation split of the CSV rows: same files and seed, same split.

    Rows are split before tokenisation, so ``finetuning.evaluate`` gets the same
    validation rows whatever max_length was. Neighbouring rows of one chat share
    messages (a sliding window), so validation loss is somewhat optimistic.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation fraction must be in (0, 1), got {validation_fraction}")
    if len(dialogues) < 2:
        raise DataError(f"need at least 2 rows to split off validation data, got {len(dialogues)}")
    split = dialogues.train_test_split(test_size=validation_fraction, seed=seed, shuffle=True)
    return split["train"], split["test"]


def make_collator(tokenizer: Any, pad_to_multiple_of: int | None = None) -> Any:
    """Pads each batch to its own longest sample; padded positions get label -100 and attention 0."""
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(
        tokenizer,
        padding="longest",
        label_pad_token_id=IGNORE_INDEX,
        pad_to_multiple_of=pad_to_multiple_of,
        return_tensors="pt",
    )


def ensure_pad_token(tokenizer: Any) -> None:
    """ruDialoGPT has no pad token: pad with EOS (labels, not the token id, decide what is learned)."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
