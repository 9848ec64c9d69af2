"""The exact validation rows of a training run, saved in its output directory.

``finetuning.evaluate`` pointed at the trained model scores these rows, so it
never re-derives a split from its own copy of the defaults (and never scores
training rows). The file is a prepared CSV (finetuning.training_csv) that
any other tool can read as well.

The leading underscore keeps it local: ``Trainer.push_to_hub`` skips ``_*``
files, and these are chat messages, even if anonymised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetuning.training_csv import write_header, write_rows

VALIDATION_ROWS_FILE = "_validation_rows.csv"


def save_validation_rows(dialogues: Any, output_dir: str | Path) -> Path:
    """Write ``dialogues`` (columns ``messages``, ``response``) as a prepared CSV; returns its path."""
    messages: list[list[str]] = dialogues["messages"]
    width = max((len(m) for m in messages), default=0)
    path = Path(output_dir) / VALIDATION_ROWS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        write_header(f, width)
        # Rows from files of different widths are aligned on the newest message, as when read.
        write_rows(
            f,
            (
                [*([""] * (width - len(context))), *context, response]
                for context, response in zip(messages, dialogues["response"], strict=True)
            ),
        )
    return path


def saved_validation_rows(model_dir: str | Path) -> Path | None:
    """The validation rows a training run left in ``model_dir``, if any."""
    path = Path(model_dir) / VALIDATION_ROWS_FILE
    return path if path.is_file() else None
