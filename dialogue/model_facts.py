"""The dialogue facts a trained model directory carries: ``dialogue.json``.

Training writes it next to ``generation_config.json``; the model server reads
both as its defaults (the environment overrides them), so a served model
tells how it was trained instead of five hand-kept copies of CONTEXT_SIZE.
A base model without the file (the untuned ruDialoGPT) gets the shared
format's defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dialogue.format import CONTEXT_SIZE, FIRST_SPEAKER, SECOND_SPEAKER
from dialogue.model_source import model_file_text

FACTS_FILE = "dialogue.json"
# Bump when the text format changes in a way that makes old models read it differently.
FORMAT_VERSION = 1


class DialogueFactsError(ValueError):
    """A dialogue.json that this code cannot serve; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class DialogueFacts:
    context_size: int = CONTEXT_SIZE
    first_speaker: str = FIRST_SPEAKER
    second_speaker: str = SECOND_SPEAKER
    format_version: int = FORMAT_VERSION

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FACTS_FILE
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_json(cls, raw: str, source: str) -> DialogueFacts:
        """Parse and check a dialogue.json; ``source`` names it in errors."""
        try:
            data = json.loads(raw)
            facts = cls(**data)
        except (json.JSONDecodeError, TypeError) as error:
            raise DialogueFactsError(f"{source}: not a valid {FACTS_FILE} ({error})") from None
        if not isinstance(facts.context_size, int) or facts.context_size < 1:
            raise DialogueFactsError(f"{source}: context_size must be a positive integer")
        if facts.format_version != FORMAT_VERSION or (facts.first_speaker, facts.second_speaker) != (
            FIRST_SPEAKER,
            SECOND_SPEAKER,
        ):
            raise DialogueFactsError(
                f"{source}: the model was trained with dialogue format {facts.format_version} "
                f"({facts.first_speaker} / {facts.second_speaker}); this code speaks format "
                f"{FORMAT_VERSION} ({FIRST_SPEAKER} / {SECOND_SPEAKER})"
            )
        return facts


def read_facts(source: str) -> DialogueFacts | None:
    """The facts of a resolved model, a local directory or a hub id; None when it carries none.

    The server and evaluation both read them here, so a model pushed to the hub
    is evaluated with the context size it was trained with, as it is served.
    """
    if Path(source).expanduser().is_dir():
        return read_local_facts(Path(source).expanduser())
    raw = model_file_text(source, FACTS_FILE)
    return None if raw is None else DialogueFacts.from_json(raw, f"{source}/{FACTS_FILE}")


def read_local_facts(directory: str | Path) -> DialogueFacts | None:
    """The facts of a local model directory, or None when it carries none."""
    path = Path(directory) / FACTS_FILE
    if not path.is_file():
        return None
    return DialogueFacts.from_json(path.read_text(encoding="utf-8"), str(path))


def position_count(model_config: Any) -> int | None:
    """How many tokens the model reads at once, from its ``config.json``; None when it does not say.

    GPT-2 names it ``n_positions``, most other architectures ``max_position_embeddings``.
    """
    positions = getattr(model_config, "n_positions", None) or getattr(
        model_config, "max_position_embeddings", None
    )
    return int(positions) if positions else None
