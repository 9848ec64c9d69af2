"""Settings in, a loaded engine out: the one place where the model is loaded.

Runs in the engine's worker thread (it takes seconds to minutes), never on the event loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, GenerationConfig

from dialogue.format import TAG_PREFIX
from dialogue.model_facts import position_count
from dialogue.model_source import ModelSourceError, first_line, resolve_model_source
from model_server.engines.base import Engine, EngineSettingError
from model_server.engines.transformers import TransformersEngine, load_transformers, pick_device, pick_dtype
from model_server.model_defaults import ServingDefaults, serving_defaults
from model_server.settings import GenerationSettings, Settings

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model or its tokenizer could not be loaded; the message says why."""


def pick_engine(setting: str, device: torch.device) -> str:
    """``auto``: CTranslate2 on a CPU (measured about 3x faster there), transformers on CUDA."""
    if setting != "auto":
        return setting
    return "transformers" if device.type == "cuda" else "ctranslate2"


def ctranslate2_compute_type(settings: Settings) -> str | None:
    """The compute type CTranslate2 runs the model at; None when the transformers engine runs it."""
    from model_server.engines.ctranslate2 import resolve_compute_type

    device = pick_device(settings.device)
    if pick_engine(settings.engine, device) != "ctranslate2":
        return None
    return resolve_compute_type(settings.engine_compute_type, device.type)


def load_engine(settings: Settings) -> Engine:
    """Load tokenizer and model once; raise ModelLoadError with a one-line reason."""
    try:
        # Seconds, not minutes, for a mistyped path or an unreachable hub; a cached copy when offline.
        source = resolve_model_source(settings.model_name_or_path, "MODEL_NAME_OR_PATH")
    except ModelSourceError as exc:
        raise ModelLoadError(str(exc)) from None
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    try:
        return _load(settings, source)
    except ModelLoadError:
        raise
    except EngineSettingError as exc:
        raise ModelLoadError(str(exc)) from None
    except Exception as exc:  # transformers and the converter raise OSError, ValueError, HF errors…
        raise ModelLoadError(f"cannot load model {source!r}: {first_line(exc)}") from exc


@dataclass(frozen=True)
class _Model:
    """What either engine is built from."""

    source: str
    defaults: ServingDefaults
    device: torch.device
    tokenizer: Any
    max_prompt: int


def _load(settings: Settings, source: str) -> Engine:
    defaults = serving_defaults(settings, source)
    gen = defaults.generation
    device = pick_device(settings.device)
    tokenizer = AutoTokenizer.from_pretrained(source)
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"tokenizer of {source!r} has no EOS token")
    positions = position_count(AutoConfig.from_pretrained(source))
    if positions is None:
        raise ModelLoadError(f"config of {source!r} names no position count (n_positions)")
    max_prompt = positions - gen.max_new_tokens
    if max_prompt < 8:
        raise ModelLoadError(
            f"GEN_MAX_NEW_TOKENS={gen.max_new_tokens} leaves no room for a prompt in {positions} positions"
        )
    build = _ctranslate2 if pick_engine(settings.engine, device) == "ctranslate2" else _transformers
    loaded = build(settings, _Model(source, defaults, device, tokenizer, max_prompt))
    for note in loaded.notes:
        log.info("%s", note)
    log.info(
        "loaded %s with %s on %s (%s), %d positions, context size %d",
        source, loaded.name, loaded.device, loaded.compute_type, positions, loaded.context_size,
    )  # fmt: skip
    return loaded


def _stop_strings(gen: GenerationSettings) -> list[str]:
    """The settings' stop strings but the speaker tag, at which every answer stops anyway."""
    return [s for s in gen.stop_strings or () if s != TAG_PREFIX]


def _ctranslate2(settings: Settings, model: _Model) -> Engine:
    from model_server.convert import converted_model
    from model_server.engines.ctranslate2 import CTranslate2Engine, generate_options, load_ctranslate2

    gen, device = model.defaults.generation, model.device
    options, notes = generate_options(gen, set(model.defaults.explicit))
    compute_type = ctranslate2_compute_type(settings)
    assert compute_type is not None
    model_dir = converted_model(model.source, compute_type)
    threads = settings.torch_threads or torch.get_num_threads()
    generator = load_ctranslate2(model_dir, device.type, compute_type, threads, settings.engine_replicas)
    return CTranslate2Engine(
        generator, model.tokenizer, options, compute_type=compute_type, device=str(device),
        context_size=model.defaults.context_size, max_prompt_tokens=model.max_prompt,
        max_new_tokens=gen.max_new_tokens, stop=_stop_strings(gen), notes=notes, threads=threads,
        replicas=settings.engine_replicas,
    )  # fmt: skip


def _transformers(settings: Settings, model: _Model) -> Engine:
    gen, tokenizer = model.defaults.generation, model.tokenizer
    dtype = pick_dtype(settings.engine_compute_type, model.device)
    weights = load_transformers(model.source, dtype, model.device)
    # ruDialoGPT ships no pad token; EOS pads, and every answer stops at it anyway.
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generation_config = GenerationConfig(
        **gen.generation_kwargs(),
        max_time=settings.request_timeout_s,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return TransformersEngine(
        weights, tokenizer, generation_config, model.device, dtype, model.defaults.context_size,
        model.max_prompt, _stop_strings(gen),
    )  # fmt: skip
