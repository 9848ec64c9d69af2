"""The parts of a retraining run: held-out data by date, the decision, and publishing.

The newest slice of the corpus is never trained on: the challenger and the
champion are both scored on it, so a model that only memorised older talk
does not win. Its rows are the ones that the newest messages add: the corpus
is prepared whole and without its newest messages, and the rows of the first
that the second lacks are held out (a reply to an older message keeps that
message as context; a row that also occurs in older talk is not held out).

Publishing is a new directory per model and one symlink, ``current``, that
is replaced in one rename: a model server that loads ``current`` sees the
old model or the new one, never a half-copied directory.
"""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from finetuning.data import DataError
from finetuning.prepare.command import prepare_database
from finetuning.prepare.database import CorpusQuery, newest_cutoff
from finetuning.prepare.records import SampleOptions
from finetuning.training_csv import atomic_text_file, write_header, write_rows

CURRENT = "current"


@dataclass(frozen=True)
class Split:
    train_csv: Path
    heldout_csv: Path
    cutoff: datetime
    corpus_messages: int
    heldout_messages: int
    train_rows: int
    heldout_rows: int

    def counts(self) -> dict[str, Any]:
        return {
            "corpus_messages": self.corpus_messages,
            "heldout_messages": self.heldout_messages,
            "heldout_from": self.cutoff.isoformat(),
            "train_rows": self.train_rows,
            "heldout_rows": self.heldout_rows,
        }


def _rows(path: Path) -> list[tuple[str, ...]]:
    with path.open(encoding="utf-8", newline="") as f:
        return [tuple(row) for row in list(csv.reader(f))[1:]]


def split_corpus(
    query: CorpusQuery, data_dir: Path, options: SampleOptions, fraction: float, minimum: int
) -> Split:
    """train.csv (the corpus before its newest messages) and heldout.csv (the rows those add)."""
    cutoff, total, held = newest_cutoff(query, fraction, minimum)
    if cutoff is None or held >= total:
        raise DataError(f"{query.shown()}: {total} corpus message(s), too few to train on and hold some out")
    whole, train = data_dir / "corpus.csv", data_dir / "train.csv"
    prepare_database(query, whole, options)
    prepare_database(replace(query, until=cutoff), train, options)
    train_rows = _rows(train)
    seen = set(train_rows)
    heldout = [row for row in _rows(whole) if row not in seen]
    if len(heldout) < 2 or not train_rows:
        raise DataError(
            f"{query.shown()}: {len(train_rows)} rows to train on, {len(heldout)} held out: too few"
        )
    heldout_csv = data_dir / "heldout.csv"
    with atomic_text_file(heldout_csv) as out:
        write_header(out, options.context_size)
        write_rows(out, heldout)
    return Split(train, heldout_csv, cutoff, total, held, len(train_rows), len(heldout))


def decide(champion: dict[str, Any], challenger: dict[str, Any]) -> tuple[bool, str]:
    """Promote or not, and why, from both models' evaluation results on the held-out rows."""
    old = champion["conditions"]["true_context"]["perplexity"]
    new = challenger["conditions"]["true_context"]["perplexity"]
    verdict = challenger["verdict"]
    reasons = []
    if not new < old:
        reasons.append(f"its perplexity {new:.3f} is not below the champion's {old:.3f}")
    if verdict["uses_context"] is not True:
        reasons.append(f"it {verdict['line']}")
    if reasons:
        return False, "; ".join(reasons)
    return True, f"its perplexity {new:.3f} is below the champion's {old:.3f} and it {verdict['line']}"


def champion_dir(models_dir: Path | None, fallback: str | None) -> str:
    """``MODELS_DIR/current`` where it exists, else ``--model_name_or_path``."""
    if models_dir is not None:
        current = models_dir / CURRENT
        if current.exists() and not current.is_symlink():
            raise DataError(
                f"{current} is a directory, not a symlink: move it to {models_dir}/<name> "
                f"and run `ln -s <name> {current}`"
            )
        if current.exists():
            return str(current.resolve())
    if fallback is None:
        where = f"{models_dir / CURRENT} does not exist and " if models_dir is not None else ""
        raise DataError(f"no champion: {where}no --model_name_or_path was given")
    return fallback


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def publish(model_dir: Path, models_dir: Path) -> Path:
    """``model_dir`` (its checkpoints left out) as ``MODELS_DIR/<UTC timestamp>``, then ``current`` -> it."""
    models_dir.mkdir(parents=True, exist_ok=True)
    stamp = timestamp()
    target, n = models_dir / stamp, 1
    while target.exists():
        target, n = models_dir / f"{stamp}-{n}", n + 1
    partial = models_dir / f".{target.name}.partial"
    shutil.copytree(model_dir, partial, ignore=shutil.ignore_patterns("checkpoint-*"))
    os.replace(partial, target)
    # A relative link: the directory stays valid when mounted elsewhere (a container's /models).
    link = models_dir / f".{CURRENT}.{os.getpid()}"
    link.unlink(missing_ok=True)
    os.symlink(target.name, link)
    os.replace(link, models_dir / CURRENT)
    return target


def push(model_dir: Path, repo_id: str, message: str) -> str:
    """The model as a new revision of the hub repository ``repo_id``; its commit id."""
    from huggingface_hub import HfApi

    api = HfApi()  # the token: HF_TOKEN, or `hf auth login`'s
    api.create_repo(repo_id, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id, folder_path=model_dir, commit_message=message, ignore_patterns=["checkpoint-*"]
    )
    return str(info.oid)
