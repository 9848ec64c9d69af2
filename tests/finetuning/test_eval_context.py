"""finetuning.evaluate: the context ablation and its verdict, on models trained with and without context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetuning.data import load_dialogues, split_dialogues
from finetuning.evaluate import derangement
from finetuning.evaluate import main as evaluate_main
from finetuning.validation_rows import VALIDATION_ROWS_FILE
from finetuning.verdict import context_verdict, sign_test_p
from tests.finetuning.train_fixtures import trained_data_dir, trained_model, trained_without_context


def rows(dialogues) -> list[tuple[tuple[str, ...], str]]:
    return [(tuple(m), r) for m, r in zip(dialogues["messages"], dialogues["response"], strict=True)]


def test_training_saves_its_exact_validation_rows(tmp_path_factory: pytest.TempPathFactory) -> None:
    model_dir = trained_model(tmp_path_factory)
    saved = load_dialogues([model_dir / VALIDATION_ROWS_FILE])
    # The run's split: same files, 10 % (train_args), seed 42 (config.yaml).
    _, valid = split_dialogues(load_dialogues(sorted(trained_data_dir().glob("*.csv"))), 0.10, 42)
    assert rows(saved) == rows(valid) and len(saved) == 18


def test_a_model_trained_with_its_context_is_found_to_use_it(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = trained_model(tmp_path_factory)
    # Nothing but the model: its saved validation rows are scored, results go to <model>/eval.
    evaluate_main(["--model_name_or_path", str(model_dir)])
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    print(verdict)
    results = json.loads((model_dir / "eval" / "context_ablation.json").read_text())
    ppl = {name: c["perplexity"] for name, c in results["conditions"].items()}
    assert results["samples"] == 18 and results["context_size"] == 3
    assert ppl["true_context"] < 0.5 * ppl["shuffled_context"]
    assert ppl["true_context"] < 0.5 * ppl["no_context"]
    ratio = ppl["true_context"] / ppl["shuffled_context"]
    assert verdict == (
        f"uses its context: true-context perplexity is {ratio:.2f}× the shuffled-context one on 18 dialogues"
    )
    assert results["verdict"]["uses_context"] is True
    assert (model_dir / "eval" / "context_ablation.png").read_bytes()[:4] == b"\x89PNG"


def test_a_model_trained_without_its_context_is_found_not_to_use_it(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_context = trained_model(tmp_path_factory)
    model_dir = trained_without_context(tmp_path_factory)
    capsys.readouterr()
    # Scored on the real dialogues: the other model's validation rows, given like any CSV.
    evaluate_main(
        ["--model_name_or_path", str(model_dir), "--data_file", str(with_context / VALIDATION_ROWS_FILE)]
    )
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    print(verdict)
    assert verdict.startswith("does not use its context: true-context perplexity is ")
    assert "on 18 dialogues" in verdict
    results = json.loads((model_dir / "eval" / "context_ablation.json").read_text())
    assert results["verdict"]["uses_context"] is False and results["verdict"]["ratio"] > 0.9


def test_the_verdict_needs_a_large_effect_that_is_not_chance() -> None:
    # 100 dialogues of 10 response tokens each.
    def verdict(true_nll: list[float], shuffled_nll: list[float]):
        return context_verdict(true_nll, shuffled_nll, n_tokens=10 * len(true_nll))

    clear = verdict([10.0] * 100, [20.0] * 100)
    assert clear.uses_context is True and clear.ratio == pytest.approx(0.368, abs=1e-3)
    # Better in every dialogue, but only by 1 %: the context is ignored in practice.
    tiny = verdict([10.0] * 100, [10.1] * 100)
    assert tiny.uses_context is False and tiny.p_value < 1e-20
    # A large average gain from a few dialogues: chance.
    lucky = verdict([1.0] * 5 + [10.0] * 95, [100.0] * 5 + [10.0] * 45 + [9.9] * 50)
    assert lucky.ratio < 0.9 and lucky.uses_context is False
    assert "its own context is likelier in 5 of 55" in lucky.line
    few = verdict([1.0] * 9, [9.0] * 9)
    assert few.uses_context is None and few.line.startswith("cannot tell")


def test_sign_test_tail() -> None:
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(3, 3) == 1 / 8
    assert sign_test_p(15, 18) == pytest.approx(988 / 2**18)


def test_every_row_gets_another_rows_context() -> None:
    for n in (2, 3, 10, 101):
        donor = derangement(n, seed=n)
        assert sorted(donor) == list(range(n))
        assert all(d != i for i, d in enumerate(donor))
