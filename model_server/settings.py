"""Model server configuration, read from the environment."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogue.format import CONTEXT_SIZE, TAG_PREFIX
from dialogue.generation import DEFAULT_MODEL, MODEL_CARD_GENERATION

GEN_PREFIX = "GEN_"
_CARD = MODEL_CARD_GENERATION


class GenerationSettings(BaseSettings):
    """Generation defaults from the ruDialoGPT model card; ``GEN_<FIELD>`` overrides any of them.

    Fields not declared here but known to transformers' ``GenerationConfig``
    (``GEN_MIN_P``, ``GEN_TYPICAL_P``, …) are accepted as JSON values or strings.
    """

    model_config = SettingsConfigDict(env_prefix=GEN_PREFIX, extra="forbid", env_parse_none_str="null")

    do_sample: bool = _CARD["do_sample"]
    num_beams: int = Field(_CARD["num_beams"], ge=1)
    temperature: float = Field(_CARD["temperature"], gt=0)
    top_k: int = Field(_CARD["top_k"], ge=0)
    top_p: float = Field(_CARD["top_p"], gt=0, le=1)
    max_new_tokens: int = Field(_CARD["max_new_tokens"], ge=1)
    min_new_tokens: int | None = Field(None, ge=0)
    repetition_penalty: float = Field(_CARD["repetition_penalty"], gt=0)
    no_repeat_ngram_size: int = Field(_CARD["no_repeat_ngram_size"], ge=0)
    length_penalty: float = _CARD["length_penalty"]
    num_return_sequences: Literal[1] = 1
    # ruDialoGPT goes on to write the next speaker's turn; stop at its tag.
    stop_strings: list[str] | None = Field(default_factory=lambda: [TAG_PREFIX])

    # Any other GEN_* variable naming a GenerationConfig field, read when the settings are built.
    other: dict[str, Any] = Field(default_factory=lambda: _other_generation_env(os.environ))

    def generation_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for transformers' ``GenerationConfig``."""
        kwargs = self.model_dump(exclude={"other"})
        # Settings that only apply to sampling or beams would make transformers warn on every call.
        if not kwargs["do_sample"]:
            for name in ("temperature", "top_k", "top_p"):
                kwargs.pop(name)
        if kwargs["num_beams"] == 1:
            kwargs.pop("length_penalty")
        kwargs.update(self.other)
        return kwargs


def _other_generation_env(environ: Mapping[str, str]) -> dict[str, Any]:
    from transformers import GenerationConfig

    known = set(GenerationConfig().to_dict())
    declared = set(GenerationSettings.model_fields)
    other: dict[str, Any] = {}
    for name, raw in environ.items():
        field = name[len(GEN_PREFIX) :].lower()
        if not name.startswith(GEN_PREFIX) or field in declared:
            continue
        if field not in known:
            raise ValueError(f"{name}: not a transformers GenerationConfig field")
        try:
            other[field] = json.loads(raw)
        except json.JSONDecodeError:
            other[field] = raw
    return other


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    model_name_or_path: str = DEFAULT_MODEL
    host: str = "0.0.0.0"
    port: int = 8000
    # "auto": CUDA when present, else CPU. dtype "auto": bf16 on GPUs that have it, fp16 on
    # older GPUs, fp32 on CPU (half precision is slow or unsupported there).
    device: str = "auto"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    torch_threads: int | None = Field(None, ge=1)

    context_size: int = Field(CONTEXT_SIZE, ge=1)
    # Telegram messages are at most 4096 characters.
    max_query_chars: int = Field(4096, ge=1)
    max_message_chars: int = Field(4096, ge=1)
    max_context_items: int = Field(50, ge=0)

    max_batch_size: int = Field(16, ge=1)
    max_batch_wait_ms: float = Field(5.0, ge=0)
    max_queue_size: int = Field(256, ge=1)
    request_timeout_s: float = Field(60.0, gt=0)

    log_level: str = "info"

    generation: GenerationSettings = Field(default_factory=GenerationSettings)


@lru_cache
def get_settings() -> Settings:
    return Settings()
