"""The transformers engine: ``model.generate`` on left-padded batches, on CPU or CUDA.

``repetition_penalty`` and ``no_repeat_ngram_size`` count the answer's own
tokens, not the prompt's, as CTranslate2 does when it reads the prompt in one
pass (see ``model_server.engines.ctranslate2``): one contract for both engines.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    GenerationConfig,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)

from model_server.engines.base import (
    Admit,
    Answer,
    AnswerTracker,
    EngineSettingError,
    GenerationRequest,
    PromptEncoder,
    SamplingOverrides,
)
from model_server.engines.stepping import SteppingBatch, answer_penalties, left_padded, steppable

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(setting: str, cuda_available: bool | None = None) -> torch.device:
    if setting != "auto":
        return torch.device(setting)
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    return torch.device("cuda" if cuda else "cpu")


def pick_dtype(setting: str, device: torch.device, bf16_supported: bool | None = None) -> str:
    """The compute type name for ``ENGINE_COMPUTE_TYPE``; "auto" follows the device."""
    if setting != "auto":
        if setting not in DTYPES:
            raise EngineSettingError(
                f"ENGINE_COMPUTE_TYPE={setting}: transformers runs {', '.join(DTYPES)} (or auto)"
            )
        return setting
    if device.type != "cuda":
        return "float32"
    bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return "bfloat16" if bf16 else "float16"


class _RowsDone(StoppingCriteria):
    """Feeds each step's tokens to the rows' trackers and stops the rows they call done."""

    def __init__(self, trackers: list[AnswerTracker]) -> None:
        self._trackers = trackers

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        last = input_ids[:, -1].tolist()
        done = [tracker.push(int(token)) for tracker, token in zip(self._trackers, last, strict=True)]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


class TransformersEngine(PromptEncoder):
    name = "transformers"
    honours_seed = True
    # One call at a time: rows join it between steps instead (see engines.stepping).
    parallel_calls = 1

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        generation_config: GenerationConfig,
        device: torch.device,
        compute_type: str,
        context_size: int,
        max_prompt_tokens: int,
        stop: Sequence[str],
    ) -> None:
        super().__init__(tokenizer, context_size, max_prompt_tokens)
        self.model = model
        self.generation_config = generation_config
        self.device_ = device
        self.device = str(device)
        self.compute_type = compute_type
        self.max_new_tokens = int(generation_config.max_new_tokens)
        self.stop = tuple(stop)
        self.notes: list[str] = []

    @property
    def pad_token_id(self) -> int:
        return int(self.generation_config.pad_token_id)

    def _config(self, overrides: SamplingOverrides, max_new_tokens: int) -> GenerationConfig:
        config = copy.deepcopy(self.generation_config)
        config.max_new_tokens = max_new_tokens
        if overrides.temperature is not None:
            config.do_sample = overrides.temperature > 0
            if config.do_sample:
                config.temperature = overrides.temperature
        if overrides.top_p is not None:
            config.top_p = overrides.top_p
        return config

    def generate(self, requests: Sequence[GenerationRequest], admit: Admit | None = None) -> list[Answer]:
        """Requests that share their sampling overrides, decoded together.

        Step by step (rows join between steps, see ``engines.stepping``) when the settings allow;
        else one ``model.generate`` call, and ``admit``'s requests wait for the next call.
        """
        config = self._config(requests[0].overrides, max(r.max_new_tokens for r in requests))
        if steppable(config):
            batch = SteppingBatch(self.model, config, self.tokenizer, self.stop, self.pad_token_id)
            return [tracker.answer for tracker in batch.run(requests, admit)]
        return self._generate(requests, config)

    @torch.inference_mode()
    def _generate(self, requests: Sequence[GenerationRequest], config: GenerationConfig) -> list[Answer]:
        overrides = requests[0].overrides
        trackers = [AnswerTracker(self.tokenizer, r, self.stop) for r in requests]
        input_ids, attention_mask = left_padded(requests, self.pad_token_id)
        width = input_ids.shape[1]
        extra: dict[str, Any] = {"logits_processor": answer_penalties(config, width)}
        if config.num_beams == 1:
            # Rows are the requests: their trackers stop them one by one and stream their text.
            config.stop_strings = None
            extra["stopping_criteria"] = StoppingCriteriaList([_RowsDone(trackers)])
        elif config.stop_strings:
            extra["tokenizer"] = self.tokenizer
        if overrides.seed is not None:
            torch.manual_seed(overrides.seed)
        output = self.model.generate(
            input_ids=input_ids.to(self.device_),
            attention_mask=attention_mask.to(self.device_),
            generation_config=config,
            **extra,
        )
        if config.num_beams > 1:
            for tracker, row in zip(trackers, output[:, width:].tolist(), strict=True):
                for token in row:
                    if tracker.push(int(token)):
                        break
        for tracker in trackers:
            tracker.finish("length")  # rows that ran out of steps end here
        return [tracker.answer for tracker in trackers]


def load_transformers(source: str, dtype: str, device: torch.device) -> Any:
    model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=DTYPES[dtype])
    return model.to(device).eval()
