"""The model served by default and the generation settings of the ruDialoGPT model card.

Training saves the settings as the model's ``generation_config.json``; the model
server uses them as defaults that ``GEN_<FIELD>`` variables override.
"""

from __future__ import annotations

from typing import Any, Final

# ruDialoGPT-medium fine-tuned on Telegram chats in this project's format.
DEFAULT_MODEL: Final = "taranetsdan/ruDialoGPT_v2_medium"

MODEL_CARD_GENERATION: Final[dict[str, Any]] = {
    "do_sample": True,
    "num_beams": 3,
    "temperature": 1.2,
    "top_k": 10,
    "top_p": 0.95,
    "no_repeat_ngram_size": 2,
    "repetition_penalty": 1.2,
    "length_penalty": 1.0,
    "max_new_tokens": 40,
}
