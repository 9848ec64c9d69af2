"""Loading the model and turning dialogues into answers, batch by batch.

Everything here is synchronous and runs in the batcher's worker thread, so
the event loop never waits on torch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from dialogue.format import FALLBACK_ANSWER, Turn, extract_answer, prompt_text, serving_messages
from dialogue.model_source import resolve_model_source
from model_server.settings import Settings

log = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """The model or its tokenizer could not be loaded; the message says why."""


def pick_device(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


def pick_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting != "auto":
        return _DTYPES[setting]
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass
class Generator:
    model: Any
    tokenizer: PreTrainedTokenizerBase
    generation_config: GenerationConfig
    device: torch.device
    context_size: int
    max_prompt_tokens: int

    @property
    def pad_token_id(self) -> int:
        return int(self.generation_config.pad_token_id)

    def encode(self, context: Sequence[Turn], query: str) -> list[int]:
        """Prompt token ids that fit the model's positions with room for the answer.

        The oldest messages go first; a query too long on its own keeps its end.
        """
        messages = serving_messages(context, query, self.context_size)
        for start in range(len(messages)):
            ids: list[int] = self.tokenizer(prompt_text(messages[start:]))["input_ids"]
            if len(ids) <= self.max_prompt_tokens:
                return ids
        return ids[-self.max_prompt_tokens :]

    @torch.inference_mode()
    def generate(self, prompts: Sequence[Sequence[int]]) -> list[str]:
        """One ``generate`` call for the whole batch; one answer per prompt."""
        width = max(len(p) for p in prompts)
        # Left padding keeps every prompt's last token next to its first new token.
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention_mask[row, width - len(prompt) :] = 1
        output = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=attention_mask.to(self.device),
            generation_config=self.generation_config,
            tokenizer=self.tokenizer,
        )
        new_tokens = output[:, width:].tolist()
        return [
            extract_answer(self.tokenizer, row, self.pad_token_id) or FALLBACK_ANSWER for row in new_tokens
        ]


def load_generator(settings: Settings) -> Generator:
    """Load tokenizer and model once; raise ModelLoadError with a one-line reason."""
    source = settings.model_name_or_path
    source = resolve_model_source(source, "MODEL_NAME_OR_PATH")  # fails fast: bad path, hub unreachable
    if _looks_like_path(source) and not Path(source).is_dir():
        raise ModelLoadError(f"model directory {source!r} does not exist")
    if settings.torch_threads:
        torch.set_num_threads(settings.torch_threads)
    device = pick_device(settings.device)
    dtype = pick_dtype(settings.dtype, device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except Exception as exc:  # transformers raises OSError, ValueError, HF errors…
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load model {source!r}: {reason}") from exc
    if tokenizer.eos_token_id is None:
        raise ModelLoadError(f"tokenizer of {source!r} has no EOS token")
    model.to(device).eval()

    gen_kwargs = settings.generation.generation_kwargs()
    # ruDialoGPT ships no pad token; EOS pads, and extraction stops at it anyway.
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    generation_config = GenerationConfig(
        **gen_kwargs,
        max_time=settings.request_timeout_s,
        pad_token_id=pad_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )

    positions = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    max_prompt = positions - generation_config.max_new_tokens
    if max_prompt < 8:
        raise ModelLoadError(
            f"GEN_MAX_NEW_TOKENS={generation_config.max_new_tokens} leaves no room for a prompt "
            f"in {positions} positions"
        )
    log.info(
        "loaded %s on %s (%s), %d positions", source, device, str(dtype).removeprefix("torch."), positions
    )
    return Generator(model, tokenizer, generation_config, device, settings.context_size, max_prompt)


def _looks_like_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or Path(source).exists() or source.count("/") > 1
