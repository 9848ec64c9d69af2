"""Model server configuration, read from the environment and from ``.env`` (the environment wins)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from dotenv import dotenv_values
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dialogue.format import CONTEXT_SIZE, TAG_PREFIX
from dialogue.generation import DEFAULT_MODEL, MODEL_CARD_GENERATION

GEN_PREFIX = "GEN_"
ENV_FILE = ".env"
_CARD = MODEL_CARD_GENERATION


class GenerationSettings(BaseSettings):
    """Generation defaults from the ruDialoGPT model card; ``GEN_<FIELD>`` overrides any of them.

    Fields not declared here but known to transformers' ``GenerationConfig``
    (``GEN_MIN_P``, ``GEN_TYPICAL_P``, …) are accepted as JSON values or strings.
    A model directory's ``generation_config.json`` replaces the card's defaults
    for the fields that no variable sets (see ``model_server.model_defaults``).
    """

    model_config = SettingsConfigDict(
        env_prefix=GEN_PREFIX, env_file=ENV_FILE, extra="ignore", env_parse_none_str="null"
    )

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
    # ruDialoGPT goes on to write the next speaker's turn; the answer is always cut at its
    # tag, and generation stops there. These are further strings to stop at.
    stop_strings: list[str] | None = Field(default_factory=lambda: [TAG_PREFIX])

    # Any other GEN_* variable naming a GenerationConfig field, read when the settings are built.
    other: dict[str, Any] = Field(default_factory=lambda: other_generation_env(read_environment()))

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

    def explicit(self) -> set[str]:
        """Fields a variable (or the caller) set, as opposed to defaults."""
        return set(self.model_fields_set - {"other"}) | set(self.other)


def read_environment(env_file: str | None = ENV_FILE) -> dict[str, str]:
    """``.env`` (when present) overlaid by the process environment, as pydantic-settings reads them."""
    values = {k: v for k, v in dotenv_values(env_file).items() if v is not None} if env_file else {}
    return values | dict(os.environ)


def other_generation_env(environ: Mapping[str, str]) -> dict[str, Any]:
    from transformers import GenerationConfig

    known = set(GenerationConfig().to_dict())
    declared = set(GenerationSettings.model_fields)
    other: dict[str, Any] = {}
    for name, raw in environ.items():
        field = name[len(GEN_PREFIX) :].lower()
        if not name.upper().startswith(GEN_PREFIX) or field in declared:
            continue
        if field not in known:
            raise ValueError(f"{name}: not a transformers GenerationConfig field")
        try:
            other[field] = json.loads(raw)
        except json.JSONDecodeError:
            other[field] = raw
    return other


Engine = Literal["auto", "transformers", "ctranslate2"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, extra="ignore")

    model_name_or_path: str = DEFAULT_MODEL
    host: str = "0.0.0.0"
    port: int = 8000
    # "auto": CUDA when present, else CPU.
    device: str = "auto"
    # "auto": CTranslate2 on a CPU (about 3x faster there), transformers on CUDA.
    engine: Engine = "auto"
    # "auto": int8 for CTranslate2 on a CPU, bfloat16 (or float16 on older GPUs) on CUDA,
    # float32 for transformers on a CPU (half precision is slow there).
    engine_compute_type: str = "auto"
    # Threads of torch and of CTranslate2 (one setting: only one of them computes).
    torch_threads: int | None = Field(None, ge=1)
    # CTranslate2 cannot add a request to a running batch: with replicas, one that arrives while
    # a batch generates starts on a free replica at once. The threads are shared among them.
    engine_replicas: int = Field(1, ge=1)

    # Unset: the model's dialogue.json, else the shared format's default.
    context_size: int = Field(CONTEXT_SIZE, ge=1)
    # Telegram messages are at most 4096 characters.
    max_query_chars: int = Field(4096, ge=1)
    max_message_chars: int = Field(4096, ge=1)
    max_context_items: int = Field(50, ge=0)
    # Larger request bodies get 413 before they are read whole.
    max_body_bytes: int = Field(1_000_000, ge=1)

    max_batch_size: int = Field(16, ge=1)
    # A burst of clients whose connections had closed arrives over tens of
    # milliseconds (each reconnects first): with 5 ms, 16 at once on 2 CPUs
    # became batches of 2 and 14, a third slower. A lone request waits this
    # once, next to seconds of generation.
    max_batch_wait_ms: float = Field(20.0, ge=0)
    max_queue_size: int = Field(256, ge=1)
    request_timeout_s: float = Field(60.0, gt=0)

    # Seconds between looks at a local MODEL_NAME_OR_PATH for a new model (0: never; see model_server.swap).
    model_watch_s: float = Field(60.0, ge=0)
    # Unset or empty: no authentication, for compose's private network. Set it whenever the port is
    # published: then /answer, /v1/* and /metrics want ``Authorization: Bearer <API_KEY>``.
    api_key: SecretStr | None = None

    log_level: str = "info"

    generation: GenerationSettings = Field(default_factory=GenerationSettings)


@lru_cache
def get_settings() -> Settings:
    return Settings()
