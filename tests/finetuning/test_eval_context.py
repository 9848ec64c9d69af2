"""python -m finetuning.evaluate: the context ablation shows that the trained model uses the context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetuning.evaluate import derangement
from finetuning.evaluate import main as evaluate_main
from tests.finetuning.train_fixtures import trained_data_dir, trained_model


def test_true_context_gives_lower_perplexity_than_none_or_a_foreign_one(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    model_dir = trained_model(tmp_path_factory)
    out = tmp_path / "eval"
    # Same data_dir and seed as the training run: scored on its validation rows.
    evaluate_main(
        [
            "--model_name_or_path", str(model_dir),
            "--data_dir", str(trained_data_dir()),
            "--validation_split_percentage", "10",
            "--seed", "42",
            "--output_dir", str(out),
            "--dataset_cache_dir", str(tmp_path / "cache"),
        ]
    )  # fmt: skip
    results = json.loads((out / "context_ablation.json").read_text())
    ppl = {name: c["perplexity"] for name, c in results["conditions"].items()}
    assert results["samples"] == 18 and results["response_tokens"] > results["samples"]
    assert ppl["true_context"] < 0.5 * ppl["shuffled_context"]
    assert ppl["true_context"] < 0.5 * ppl["no_context"]
    assert results["true_beats_shuffled"] > 0.5
    assert (out / "context_ablation.png").read_bytes()[:4] == b"\x89PNG"


def test_every_row_gets_another_rows_context() -> None:
    for n in (2, 3, 10, 101):
        donor = derangement(n, seed=n)
        assert sorted(donor) == list(range(n))
        assert all(d != i for i, d in enumerate(donor))
