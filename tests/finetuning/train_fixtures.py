"""Shared test data and one cached training run for the fine-tuning tests.

Imported by the test modules (no conftest here: the tests folder is shared).
The trained model is built once per test session, whichever test asks first.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HEADER = ["context_3", "context_2", "context_1", "response"]

# The newest message decides the response.
BY_NEWEST = {
    "ты любишь кофе?": "больше чай, особенно зелёный",
    "где ты живёшь?": "в Москве, а ты?",
    "спокойной ночи": "спокойной ночи, до завтра",
    "какой фильм посмотреть вечером?": "посмотри что-нибудь весёлое",
}
# Only the OLDEST message decides: the two newer ones carry no information.
BY_OLDEST = {
    "у меня кот заболел": "пусть скорее поправляется",
    "помоги с задачей по математике": "четыре, это просто",
    "сегодня хорошая погода": "давай, через час",
}
FILLER = [
    "привет",
    "отлично, спасибо",
    "очень, там про звёзды и планеты",
    "тоже неплохо",
    "да, солнце светит",
]
NEUTRAL_NEWEST = ["хорошо, а у тебя?", "интересно?", "завтра пойдём", "комедию?"]


@dataclass(frozen=True)
class Probe:
    """A request to the served model and the answer training fixed for it."""

    context: list[dict[str, str]]
    query: str
    expected: str


def write_csv(path: Path, rows: Sequence[Sequence[str]], header: Sequence[str] = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def context_rows(seed: int = 0) -> list[list[str]]:
    """Rows whose response is a function of the context; some have missing (empty) context cells."""
    rng = random.Random(seed)
    rows: list[list[str]] = []
    for key, response in BY_NEWEST.items():
        for oldest, middle in itertools.product(["", *FILLER], FILLER):
            rows.append([oldest if rng.random() > 0.3 else "", middle, key, response])
    for key, response in BY_OLDEST.items():
        for middle, newest in itertools.product(FILLER, NEUTRAL_NEWEST):
            rows.append([key, middle, newest, response])
    rng.shuffle(rows)
    return rows


def small_data_dir(root: Path, n_rows: int = 60) -> Path:
    """A data directory of one CSV with the first ``n_rows`` of :func:`context_rows`."""
    write_csv(root / "chat.csv", context_rows()[:n_rows])
    return root


def probes() -> list[Probe]:
    """One request per rule, in the bot's shape: context oldest first, roles alternating to the query."""
    out = [
        Probe([{"role": "user", "text": "тоже неплохо"}, {"role": "bot", "text": "привет"}], key, response)
        for key, response in BY_NEWEST.items()
    ]
    out += [
        Probe(
            [{"role": "user", "text": key}, {"role": "bot", "text": "отлично, спасибо"}],
            "интересно?",
            response,
        )
        for key, response in BY_OLDEST.items()
    ]
    return out


def train_args(
    model_dir: Path, data_dir: Path, output_dir: Path, cache_dir: Path, **overrides: object
) -> list[str]:
    """Command-line flags for a quick CPU run of finetuning.train on top of config.yaml."""
    flags: dict[str, object] = {
        "model_name_or_path": model_dir,
        "data_dir": data_dir,
        "output_dir": output_dir,
        "dataset_cache_dir": cache_dir,
        "max_steps": 300,
        "learning_rate": 3e-3,
        "warmup_steps": 20,
        "lr_scheduler_type": "linear",
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "gradient_accumulation_steps": 1,
        "validation_split_percentage": 10.0,
        "eval_steps": 100,
        "save_steps": 100,
        "logging_steps": 25,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": False,
        "use_cpu": True,
        "disable_tqdm": True,
        "max_length": 128,
    }
    flags.update(overrides)
    return [item for name, value in flags.items() for item in (f"--{name}", str(value))]


_trained: dict[str, Path] = {}


def trained_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on :func:`context_rows`, built once per session (about 30 s on one core)."""
    if "dir" not in _trained:
        from benchmarks.support.tiny_model import build_tiny_model
        from finetuning.train import main

        root = tmp_path_factory.mktemp("trained")
        base = build_tiny_model(root / "base", n_layer=2, n_embd=64, n_positions=128)
        data = root / "data"
        write_csv(data / "dialogues.csv", context_rows())
        main(train_args(base, data, root / "out", root / "cache"))
        _trained["dir"] = root / "out"
        _trained["data"] = data
    return _trained["dir"]


def trained_data_dir() -> Path:
    return _trained["data"]


def trained_without_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same recipe on the same responses, each after ANOTHER row's context: nothing to learn from it."""
    if "without_context" not in _trained:
        from benchmarks.support.tiny_model import build_tiny_model
        from finetuning.evaluate import derangement
        from finetuning.train import main

        root = tmp_path_factory.mktemp("trained-without-context")
        base = build_tiny_model(root / "base", n_layer=2, n_embd=64, n_positions=128)
        rows = context_rows()
        donor = derangement(len(rows), seed=1)
        data = root / "data"
        write_csv(data / "dialogues.csv", [[*rows[donor[i]][:3], row[3]] for i, row in enumerate(rows)])
        main(train_args(base, data, root / "out", root / "cache", max_steps=100))
        _trained["without_context"] = root / "out"
    return _trained["without_context"]
