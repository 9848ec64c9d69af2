"""dialogue.json: what a trained model directory says about its format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogue.format import CONTEXT_SIZE
from dialogue.model_facts import FACTS_FILE, DialogueFacts, DialogueFactsError, read_local_facts


def test_saved_facts_read_back(tmp_path: Path) -> None:
    DialogueFacts(context_size=5).save(tmp_path)
    assert read_local_facts(tmp_path) == DialogueFacts(context_size=5)


def test_a_base_model_without_the_file_has_no_facts(tmp_path: Path) -> None:
    assert read_local_facts(tmp_path) is None
    assert DialogueFacts().context_size == CONTEXT_SIZE


@pytest.mark.parametrize(
    "content, reason",
    [
        ("{", "not a valid"),
        (json.dumps({"context_size": 0}), "positive integer"),
        (json.dumps({"context_size": 3, "color": "red"}), "not a valid"),
        (json.dumps({"context_size": 3, "format_version": 2}), "dialogue format 2"),
        (json.dumps({"context_size": 3, "first_speaker": "@@A@@"}), "@@A@@"),
    ],
)
def test_a_foreign_or_broken_file_is_one_clear_error(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / FACTS_FILE).write_text(content, encoding="utf-8")
    with pytest.raises(DialogueFactsError, match=reason) as error:
        read_local_facts(tmp_path)
    assert "\n" not in str(error.value)
