"""End to end: train on CSV dialogues, then serve the output directory with model_server.

The responses are fixed by the context (some only by the OLDEST context
message), so getting them back through ``POST /answer`` with greedy decoding
proves that training and serving share one format and that the whole context
window reaches the model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from dialogue.format import CONTEXT_SIZE, Turn, serving_prompt
from dialogue.generation import MODEL_CARD_GENERATION
from dialogue.model_facts import DialogueFacts, read_local_facts
from tests.finetuning.train_fixtures import probes, trained_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained_model(tmp_path_factory)


def test_validation_loss_decreases_and_the_best_checkpoint_is_kept(model_dir: Path) -> None:
    state = json.loads((model_dir / "trainer_state.json").read_text())
    evals = [(e["step"], e["eval_loss"]) for e in state["log_history"] if "eval_loss" in e]
    assert evals[0][0] == 0, "validation at step 0 gives the baseline"
    assert evals[-1][1] < 0.5 * evals[0][1]
    assert state["best_metric"] == min(loss for _, loss in evals)
    final = json.loads((model_dir / "eval_results.json").read_text())
    assert final["eval_loss"] == pytest.approx(state["best_metric"], rel=1e-4)


def test_output_directory_is_a_complete_model_with_logs(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert tokenizer.pad_token_id == tokenizer.eos_token_id
    AutoModelForCausalLM.from_pretrained(model_dir)
    generation = GenerationConfig.from_pretrained(model_dir).to_dict()
    card = dict(
        top_k=10, top_p=0.95, num_beams=3, do_sample=True, no_repeat_ngram_size=2,
        temperature=1.2, repetition_penalty=1.2, length_penalty=1.0, max_new_tokens=40,
    )  # fmt: skip
    assert card == MODEL_CARD_GENERATION
    assert {k: generation[k] for k in card} == card
    assert generation["eos_token_id"] == tokenizer.eos_token_id
    # Its dialogue facts beside the generation settings: the server needs no CONTEXT_SIZE.
    assert read_local_facts(model_dir) == DialogueFacts(context_size=CONTEXT_SIZE)
    assert (model_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((model_dir / "runs").rglob("events.out.tfevents.*")), "TensorBoard logs"
    for name in ("train_results.json", "eval_results.json", "all_results.json", "trainer_state.json"):
        assert (model_dir / name).is_file(), name


def test_the_trained_model_ends_its_answer_with_eos(model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    probe = probes()[0]
    prompt = serving_prompt([Turn(t["role"], t["text"]) for t in probe.context], probe.query)  # type: ignore[arg-type]
    input_ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    out = model.generate(input_ids, do_sample=False, num_beams=1, max_new_tokens=30, pad_token_id=0)
    new = out[0, input_ids.shape[1] :].tolist()
    expected = tokenizer(" " + probe.expected)["input_ids"] + [tokenizer.eos_token_id]
    assert new[: len(expected)] == expected


# CTranslate2 at its CPU default, int8: quantisation must not change what training fixed.
@pytest.mark.parametrize("engine", ["transformers", "ctranslate2"])
def test_served_by_model_server_it_answers_from_the_whole_context(
    model_dir: Path, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from model_server.main import create_app
    from model_server.settings import GenerationSettings, Settings

    monkeypatch.setenv("HF_HOME", str(tmp_path))  # the conversion cache
    settings = Settings(
        model_name_or_path=str(model_dir),
        engine=engine,
        generation=GenerationSettings(
            do_sample=False, num_beams=1, max_new_tokens=24, repetition_penalty=1.0, no_repeat_ngram_size=0
        ),
    )
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "model server never became healthy"
            time.sleep(0.1)
        answers = {
            p.expected: client.post("/answer", json={"query": p.query, "context": p.context}).json()["answer"]
            for p in probes()
        }
    assert answers == {expected: expected for expected in answers}
