"""What the model directory says about serving it: ``dialogue.json`` and ``generation_config.json``.

Both are defaults: a variable that is set wins, with a warning when it
overrides a value the model was trained with. A base model without
``dialogue.json`` gets the shared format's defaults.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from dialogue.model_facts import read_facts
from dialogue.model_source import model_file_text
from model_server.settings import GenerationSettings, Settings

log = logging.getLogger(__name__)

GENERATION_FILE = "generation_config.json"
# Fields of generation_config.json that stand for a choice of the trainer (not token ids etc.).
_TRAINED_FIELDS = set(GenerationSettings.model_fields) - {"other", "num_return_sequences", "stop_strings"}


@dataclass(frozen=True)
class ServingDefaults:
    context_size: int
    generation: GenerationSettings
    # Generation fields a variable set: an engine must honour these or refuse to start.
    explicit: frozenset[str]


def _trained_generation(source: str) -> dict[str, Any]:
    raw = model_file_text(source, GENERATION_FILE)
    if raw is None:
        return {}
    data = json.loads(raw)
    return {k: v for k, v in data.items() if k in _TRAINED_FIELDS and v is not None}


def serving_defaults(settings: Settings, source: str) -> ServingDefaults:
    """Context size and generation settings: the environment over the model's files over the card.

    ``source`` is the resolved model (a local directory, or a hub id the hub has).
    """
    context_size = settings.context_size
    facts = read_facts(source)
    if facts is not None and "context_size" in settings.model_fields_set:
        if facts.context_size != settings.context_size:
            log.warning(
                "CONTEXT_SIZE=%d overrides the context size %d the model was trained with",
                settings.context_size,
                facts.context_size,
            )
    elif facts is not None:
        context_size = facts.context_size

    gen = settings.generation
    explicit = gen.explicit()
    trained = _trained_generation(source)
    for name in sorted(explicit & trained.keys()):
        if getattr(gen, name) != trained[name]:
            log.warning(
                "GEN_%s=%s overrides the model's %s %s=%s",
                name.upper(), getattr(gen, name), GENERATION_FILE, name, trained[name],
            )  # fmt: skip
    update = {k: v for k, v in trained.items() if k not in explicit}
    if update:
        gen = GenerationSettings.model_validate(
            gen.model_dump(exclude={"other"}) | update | {"other": gen.other}
        )
    return ServingDefaults(context_size, gen, frozenset(explicit))
