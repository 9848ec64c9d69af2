"""The CTranslate2 engine: the model converted once (see ``model_server.convert``), int8 on a CPU.

``GEN_*`` settings map onto ``Generator.generate_batch`` arguments. CTranslate2
cannot sample inside a beam search, which the model card's defaults ask for:
without an explicit ``GEN_NUM_BEAMS`` it samples with one beam and says so; an
explicit setting it cannot honour stops the start-up with one line.

Prompts are read in one pass, so ``repetition_penalty`` and
``no_repeat_ngram_size`` count the answer's tokens: CTranslate2 counts the
tokens of its decoding loop only. Stepping a prompt through that loop so that
its tokens count too, as ``model.generate`` does, made a 3-message prompt 4x
slower, slower than transformers itself. In a batch, prompts are read together
as far as the shortest one goes, and a longer one's remaining tokens step
through the loop and count: a sampled answer may count a few of its own
prompt's last tokens. Deterministic decoding is split by prompt length instead.

CTranslate2 has no time limit of its own: with one beam, each step's callback
ends a row whose request's deadline passed (see ``AnswerTracker``), so a
request that got its 504 stops using the CPU. A beam search has no callback
and runs to its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ctranslate2
import torch

from model_server.engines.base import (
    Admit,
    Answer,
    AnswerTracker,
    EngineSettingError,
    GenerationRequest,
    PromptEncoder,
    SamplingOverrides,
)
from model_server.settings import GenerationSettings

# The compute types CTranslate2 accepts for ENGINE_COMPUTE_TYPE (and converts to).
COMPUTE_TYPES = (
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)


def resolve_compute_type(setting: str, device: str) -> str:
    """ENGINE_COMPUTE_TYPE on ``device`` ("cpu", "cuda"): the server's choice and convert's, so that
    a model converted ahead of time is the one the server looks for in the cache."""
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return pick_compute_type(setting, device, bf16)


def pick_compute_type(setting: str, device: str, bf16_supported: bool = True) -> str:
    if setting == "auto":
        if device == "cpu":
            return "int8"
        return "bfloat16" if bf16_supported else "float16"
    if setting not in COMPUTE_TYPES:
        raise EngineSettingError(
            f"ENGINE_COMPUTE_TYPE={setting}: CTranslate2 runs {', '.join(COMPUTE_TYPES)} (or auto)"
        )
    return setting


def generate_options(gen: GenerationSettings, explicit: set[str]) -> tuple[dict[str, Any], list[str]]:
    """``generate_batch`` keyword arguments for ``gen``, and notes for the log and /health."""
    unsupported = sorted(name for name in gen.other if name in explicit)
    if unsupported:
        name = unsupported[0]
        raise EngineSettingError(
            f"GEN_{name.upper()}: CTranslate2 has no such setting; unset it or use ENGINE=transformers"
        )
    notes: list[str] = []
    beams = gen.num_beams
    if gen.do_sample and beams > 1:
        if "num_beams" in explicit:
            raise EngineSettingError(
                f"GEN_NUM_BEAMS={beams} with sampling: CTranslate2 cannot sample inside a beam search; "
                "set GEN_NUM_BEAMS=1 or GEN_DO_SAMPLE=false, or use ENGINE=transformers"
            )
        notes.append(
            f"CTranslate2 samples with one beam (the defaults' num_beams={beams} with sampling is "
            f"beyond it): top_k={gen.top_k}, top_p={gen.top_p}, temperature={gen.temperature}"
        )
        beams = 1
    options: dict[str, Any] = {
        "beam_size": beams,
        "repetition_penalty": gen.repetition_penalty,
        "no_repeat_ngram_size": gen.no_repeat_ngram_size,
        "min_length": gen.min_new_tokens or 0,
        "length_penalty": gen.length_penalty,
    }
    if gen.do_sample:
        options |= {
            "sampling_topk": gen.top_k,
            "sampling_topp": gen.top_p,
            "sampling_temperature": gen.temperature,
        }
    else:
        options["sampling_topk"] = 1
    return options, notes


class CTranslate2Engine(PromptEncoder):
    name = "ctranslate2"
    # CTranslate2 seeds each of its threads once, when the thread first samples
    # (set_random_seed does not reseed it later), so a request cannot bring its own seed.
    honours_seed = False

    def __init__(
        self,
        generator: ctranslate2.Generator,
        tokenizer: Any,
        options: dict[str, Any],
        *,
        compute_type: str,
        device: str,
        context_size: int,
        max_prompt_tokens: int,
        max_new_tokens: int,
        stop: Sequence[str],
        notes: list[str],
        threads: int,
        replicas: int = 1,
    ) -> None:
        super().__init__(tokenizer, context_size, max_prompt_tokens)
        self.generator = generator
        self.options = options
        self.compute_type = compute_type
        self.device = device
        self.max_new_tokens = max_new_tokens
        self.stop = tuple(stop)
        self.notes = notes
        self.threads = threads
        self.parallel_calls = replicas

    def _options(self, overrides: SamplingOverrides) -> dict[str, Any]:
        options = dict(self.options)
        if overrides.temperature is not None:
            if overrides.temperature > 0:
                options |= {"sampling_temperature": overrides.temperature, "beam_size": 1}
                options.setdefault("sampling_topk", 0)
                if options["sampling_topk"] == 1:
                    options["sampling_topk"] = 0
            else:
                options["sampling_topk"] = 1
        if overrides.top_p is not None:
            options["sampling_topp"] = overrides.top_p
        return options

    def generate(self, requests: Sequence[GenerationRequest], admit: Admit | None = None) -> list[Answer]:
        """``generate_batch`` for requests that share their sampling overrides.

        A row cannot join a running ``generate_batch`` (CTranslate2's issue 1333): ``admit``'s
        requests wait for the next call.

        One call, except for deterministic decoding with penalties: there prompts
        of different lengths go in separate calls, so that an answer never
        depends on the other prompts of its batch.
        """
        options = self._options(requests[0].overrides)
        penalised = options["repetition_penalty"] != 1 or options["no_repeat_ngram_size"] > 0
        if not (penalised and options["sampling_topk"] == 1):
            return self._generate(requests, options)
        by_length: dict[int, list[int]] = {}
        for row, request in enumerate(requests):
            by_length.setdefault(len(request.prompt), []).append(row)
        answers: list[Answer] = [Answer("")] * len(requests)
        for rows in by_length.values():
            for row, answer in zip(rows, self._generate([requests[r] for r in rows], options), strict=True):
                answers[row] = answer
        return answers

    def _generate(self, requests: Sequence[GenerationRequest], options: dict[str, Any]) -> list[Answer]:
        options = dict(options)
        trackers = [AnswerTracker(self.tokenizer, r, self.stop) for r in requests]
        if options["beam_size"] == 1:
            # Returning True stops that row: the batch ends once every row reached its end.
            def step(result: Any) -> bool:
                return trackers[result.batch_id].push(result.token_id)

            options["callback"] = step
        results = self.generator.generate_batch(
            [self.tokenizer.convert_ids_to_tokens(r.prompt) for r in requests],
            max_length=max(r.max_new_tokens for r in requests),
            include_prompt_in_result=False,
            **options,
        )
        for tracker, result in zip(trackers, results, strict=True):
            if options["beam_size"] > 1:
                for token in result.sequences_ids[0]:
                    if tracker.push(token):
                        break
            tracker.finish("length")
        return [tracker.answer for tracker in trackers]


def load_ctranslate2(
    model_dir: Path, device: str, compute_type: str, threads: int, replicas: int = 1
) -> ctranslate2.Generator:
    """``replicas`` copies that generate at once (calls from as many threads), sharing ``threads``."""
    return ctranslate2.Generator(
        str(model_dir), device=device, compute_type=compute_type,
        intra_threads=max(1, threads // replicas), inter_threads=replicas,
    )  # fmt: skip
