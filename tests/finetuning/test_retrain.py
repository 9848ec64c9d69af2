"""python -m finetuning.retrain on a tiny model and a SQLite corpus: promote, refuse, publish."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from finetuning.evaluate import derangement
from finetuning.retrain import command_line, main
from tests.finetuning.corpus_fixtures import Stored, plain_url, sqlite_url, store_corpus
from tests.finetuning.train_fixtures import context_rows, train_args

CHAT = -100500
OWNED = {"--model_name_or_path", "--data_dir", "--output_dir", "--dataset_cache_dir"}


def flags(**overrides: object) -> list[str]:
    """train_fixtures.train_args' quick CPU run, less the flags that retrain sets itself."""
    argv = train_args(Path(), Path(), Path(), Path(), **overrides)
    pairs = zip(argv[::2], argv[1::2], strict=True)
    return [item for name, value in pairs if name not in OWNED for item in (name, value)]


def conversations(rows: list[list[str]]) -> list[Stored]:
    """Each row as a talk of its own: the messages in turn, each replying to the one before, an hour apart."""
    messages: list[Stored] = []
    for n, row in enumerate(rows):
        parent = None
        for turn, text in enumerate(t for t in row if t):
            message_id = len(messages) + 1
            author = "ab"[turn % 2] if turn < len([t for t in row if t]) - 1 else "r"
            messages.append(Stored(CHAT, message_id, f"{author}{n % 7}", text, 60 * n + turn, parent))
            parent = message_id
    return messages


def corpus(path: Path, rows: list[list[str]]) -> str:
    url = sqlite_url(path)
    asyncio.run(store_corpus(url, conversations(rows)))
    return plain_url(url)


def retrain(url: str, models_dir: Path, run_dir: Path, *extra: str, **training: object) -> dict[str, Any]:
    argv = ["--from-database", url, "--models_dir", str(models_dir), "--output_dir", str(run_dir)]
    return main([*argv, *extra, *flags(**training)])


@pytest.fixture(scope="module")
def won(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Any]:
    """A first retraining: the champion is the untrained tiny model, the corpus teaches context."""
    root = tmp_path_factory.mktemp("retrain-won")
    url = corpus(root / "bot.sqlite3", context_rows())
    models = root / "models"
    report = retrain(url, models, root / "run", "--model_name_or_path", str(tiny_model_dir))
    return {"report": report, "models": models, "url": url, "root": root}


def test_a_better_challenger_is_published_and_current_points_to_it(won: dict[str, Any]) -> None:
    report, models = won["report"], won["models"]
    written = json.loads((won["root"] / "run" / "promotion.json").read_text())
    assert written["decision"] == "promoted", written
    assert written["challenger"]["perplexity"] < written["champion"]["perplexity"]
    assert written["challenger"]["uses_context"] is True
    rows = written["rows"]
    # The newest 10% of the messages, at least 200: held out, and scored.
    assert rows["heldout_messages"] >= 200 and rows["corpus_messages"] > 2 * 200
    assert rows["heldout_rows"] > 10 and rows["train_rows"] > rows["heldout_rows"]
    current = models / "current"
    assert current.is_symlink() and (current / "config.json").is_file()
    assert current.resolve() == Path(written["published"]).resolve()
    assert not list(current.glob("checkpoint-*"))
    assert report["line"].startswith("promoted: ")


def test_a_worse_challenger_is_refused_and_current_is_unchanged(won: dict[str, Any]) -> None:
    # The champion is now the trained model; far too large steps ruin the challenger.
    models, root = won["models"], won["root"]
    before = os.readlink(models / "current")
    report = retrain(won["url"], models, root / "worse", max_steps=3, learning_rate=0.5, warmup_steps=0)
    written = json.loads((root / "worse" / "promotion.json").read_text())
    assert written["decision"] == "refused" and "is not below the champion's" in written["reason"]
    assert written["challenger"]["perplexity"] > written["champion"]["perplexity"]
    assert os.readlink(models / "current") == before
    assert sorted(p.name for p in models.iterdir()) == sorted(["current", before])
    assert (root / "worse" / "challenger" / "config.json").is_file()  # kept for inspection
    assert report["line"].startswith("refused: ")


def test_a_challenger_that_ignores_context_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    # The same responses, each after another talk's messages: a lower perplexity, but no use of context.
    rows = context_rows()
    donor = derangement(len(rows), seed=1)
    url = corpus(tmp_path / "bot.sqlite3", [[*rows[donor[i]][:3], row[3]] for i, row in enumerate(rows)])
    models = tmp_path / "models"
    retrain(url, models, tmp_path / "run", "--model_name_or_path", str(tiny_model_dir), max_steps=100)
    written = json.loads((tmp_path / "run" / "promotion.json").read_text())
    assert written["decision"] == "refused", written
    assert written["challenger"]["uses_context"] is not True and "context" in written["reason"]
    assert written["published"] is None and not (models / "current").exists()


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--push_to_hub"], "--push_to_hub needs --hub_model_id USER/NAME"),
        (["--push_to_hub", "--hub_model_id", "me/bot"], "--push_to_hub needs a Hugging Face token"),
        (["--models_dir", "{tmp}/models"], "no champion: {tmp}/models/current does not exist"),
        (["--models_dir", "{tmp}/models", "--data_file", "x.csv"], "--data_file is this command's to set"),
        (["--models_dir", "{tmp}/dir-models"], "is a directory, not a symlink"),
        ([], "--models_dir is required"),
    ],
)
def test_wrong_flags_are_one_line(
    extra: list[str],
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "dir-models" / "current").mkdir(parents=True)
    url = corpus(tmp_path / "bot.sqlite3", context_rows()[:5])
    argv = ["--from-database", url, *(a.format(tmp=tmp_path) for a in extra)]
    assert command_line(argv) == 2
    err = capsys.readouterr().err
    assert says.format(tmp=tmp_path) in err and len(err.strip().splitlines()) == 1, err
