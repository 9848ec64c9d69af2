"""Iteration-level scheduling for the transformers engine: rows join and leave a batch between steps.

One forward pass decodes one token for every running row. A request that
arrives meanwhile is read (prefilled) on its own, and its key/value cache joins
the batch's, both left-padded to one length, so it starts within a step or two
instead of after the whole batch. A row leaves as soon as its tracker calls it
done, and its answer goes out then, not when the longest row of its batch ends.

The penalties run over each row's own answer tokens, left-padded to one
length, in one call for the batch, as ``model.generate`` runs them. A seeded
request samples from a generator of its own, so its answer does not depend on
what else is decoded beside it. Settings this loop does not implement (beam search, or any other
``GenerationConfig`` field) keep the batch-at-a-time ``model.generate`` path:
:func:`steppable` says which.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from transformers import (
    DynamicCache,
    GenerationConfig,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from model_server.engines.base import Admit, AnswerTracker, GenerationRequest

# The fields of a config this loop honours; any other non-default one takes model.generate.
_HONOURED = {
    "do_sample", "temperature", "top_k", "top_p", "repetition_penalty", "no_repeat_ngram_size",
    "min_new_tokens", "max_new_tokens", "num_beams", "length_penalty", "max_time", "stop_strings",
    "pad_token_id", "eos_token_id", "bos_token_id", "transformers_version", "num_return_sequences",
}  # fmt: skip


def steppable(config: GenerationConfig) -> bool:
    """Whether the step loop decodes ``config`` as ``model.generate`` would (one beam, known fields)."""
    one = config.num_beams == 1 and config.num_return_sequences in (None, 1)
    return one and set(config.to_diff_dict()) <= _HONOURED


class SteppingBatch:
    """The running batch of one ``generate`` call: its cache, and its rows in the cache's order."""

    def __init__(
        self, model: Any, config: GenerationConfig, tokenizer: Any, stop: Sequence[str], pad_id: int
    ):
        self.model, self.config, self.tokenizer = model, config, tokenizer
        self.stop, self.pad_id = stop, pad_id
        self.device = model.device
        self.trackers: list[AnswerTracker] = []
        self.generators: list[torch.Generator | None] = []
        self.cache: DynamicCache | None = None
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=self.device)
        self.last = torch.zeros((0,), dtype=torch.long, device=self.device)
        # Each row's answer tokens, left-padded with a token id past the vocabulary: penalties
        # over it ban or weaken only that id, in a column of the scores dropped right after.
        self.answer = torch.zeros((0, 0), dtype=torch.long, device=self.device)
        self.sink = int(model.config.vocab_size)
        self.warp = _warpers(config)
        # Over the answer tokens alone: no prompt columns to skip. On a copy, since it moves the
        # penalties out of the config it is given.
        self.penalties = answer_penalties(copy.deepcopy(config), 0)

    @property
    def rows(self) -> int:
        return len(self.trackers)

    @torch.inference_mode()
    def run(self, requests: Sequence[GenerationRequest], admit: Admit | None) -> list[AnswerTracker]:
        """Decode ``requests`` and whatever ``admit`` hands over until every row is done."""
        first = self.join(requests)
        while self.rows:
            joining = admit(self.rows) if admit is not None else []
            if joining:
                self.join(joining)
            if self.rows:
                self.step()
        return first

    def join(self, requests: Sequence[GenerationRequest]) -> list[AnswerTracker]:
        """Read the prompts of ``requests`` and add their rows, each with its first token chosen."""
        trackers = [AnswerTracker(self.tokenizer, r, self.stop) for r in requests]
        ids, mask = (t.to(self.device) for t in left_padded(requests, self.pad_id))
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
            cache=cache, use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        generators = [_generator(r, self.device) for r in requests]
        empty = torch.zeros((len(requests), 0), dtype=torch.long, device=self.device)
        first = self._choose(empty, out.logits[:, -1, :], generators)
        self._merge(cache, mask)
        self.trackers += trackers
        self.generators += generators
        length = max(self.answer.shape[1], 1)
        self.answer = torch.cat(
            [self._pad_answer(self.answer, length), self._pad_answer(first[:, None], length)]
        )
        self.last = torch.cat([self.last, first])
        self._settle(range(self.rows - len(requests), self.rows))
        return trackers

    def step(self) -> None:
        """One token for every running row; rows their trackers call done leave."""
        grown = torch.ones((self.rows, 1), dtype=torch.long, device=self.device)
        self.mask = torch.cat([self.mask, grown], 1)
        out = self.model(
            input_ids=self.last[:, None], attention_mask=self.mask,
            position_ids=(self.mask.sum(-1, keepdim=True) - 1), cache=self.cache, use_cache=True,
            logits_to_keep=1,
        )  # fmt: skip
        self.last = self._choose(self.answer, out.logits[:, -1, :], self.generators)
        self.answer = torch.cat([self.answer, self.last[:, None]], 1)
        self._settle(range(self.rows))

    def _choose(
        self, answer: Any, logits: torch.Tensor, generators: Sequence[torch.Generator | None]
    ) -> torch.Tensor:
        """Each row's next token, after the penalties over its own answer tokens (``answer``)."""
        scores = logits.float()
        if answer.shape[1]:
            sink = scores.new_zeros((scores.shape[0], self.sink + 1 - scores.shape[1]))
            scores = self.penalties(answer, torch.cat([scores, sink], 1))[:, : logits.shape[1]]
        if self.config.min_new_tokens:
            short = (answer != self.sink).sum(1) < self.config.min_new_tokens
            scores[short, self.tokenizer.eos_token_id] = -float("inf")
        if not self.config.do_sample:
            return scores.argmax(-1)
        probs = torch.softmax(self.warp(answer, scores), -1)
        tokens = torch.multinomial(probs, 1).squeeze(1)
        for row, generator in enumerate(generators):
            if generator is not None:
                tokens[row] = torch.multinomial(probs[row], 1, generator=generator)[0]
        return tokens

    def _settle(self, rows: range) -> None:
        """Hand ``rows`` their new token; rows that are done leave the batch (and the cache)."""
        tokens = self.last.tolist()
        done = {r for r in rows if self.trackers[r].push(int(tokens[r]))}
        if done:
            self._select([r for r in range(self.rows) if r not in done])

    def _select(self, keep: list[int]) -> None:
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        self.trackers = [self.trackers[r] for r in keep]
        self.generators = [self.generators[r] for r in keep]
        self.last, self.mask, self.answer = self.last[index], self.mask[index], self.answer[index]
        # Columns that only the rows gone had used: nobody attends to them any more.
        used = self.mask.any(0).nonzero()
        lead = int(used[0]) if len(used) else self.mask.shape[1]
        layers = [(layer.keys[index, :, lead:], layer.values[index, :, lead:]) for layer in self._layers()]
        self.mask = self.mask[:, lead:]
        answered = (self.answer != self.sink).any(0).nonzero()
        self.answer = self.answer[:, int(answered[0]) if len(answered) else self.answer.shape[1] :]
        self.cache = DynamicCache(layers, config=self.model.config) if keep else None

    def _pad_answer(self, answer: torch.Tensor, length: int) -> torch.Tensor:
        missing = length - answer.shape[1]
        return torch.cat([answer.new_full((answer.shape[0], missing), self.sink), answer], 1)

    def _merge(self, cache: DynamicCache, mask: torch.Tensor) -> None:
        """The new rows' cache below the batch's, the shorter of the two padded on the left."""
        if self.cache is None:
            self.cache, self.mask = cache, mask
            return
        length = max(self.mask.shape[1], mask.shape[1])
        layers = [
            (_left_pad(old.keys, new.keys, length), _left_pad(old.values, new.values, length))
            for old, new in zip(self._layers(), list[Any](cache.layers), strict=True)
        ]
        self.cache = DynamicCache(layers, config=self.model.config)
        self.mask = torch.cat([_pad_to(self.mask, length, 1), _pad_to(mask, length, 1)])

    def _layers(self) -> list[Any]:
        assert self.cache is not None
        return list(self.cache.layers)


def left_padded(requests: Sequence[GenerationRequest], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts as one (rows, longest) tensor and its attention mask, padded on the left.

    Left padding keeps every prompt's last token next to its first new token.
    """
    width = max(len(r.prompt) for r in requests)
    ids = torch.full((len(requests), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(requests), width), dtype=torch.long)
    for row, request in enumerate(requests):
        ids[row, width - len(request.prompt) :] = torch.tensor(request.prompt, dtype=torch.long)
        mask[row, width - len(request.prompt) :] = 1
    return ids, mask


class _AnswerNgrams(NoRepeatNGramLogitsProcessor):
    """The n-gram ban over the new tokens only: the first ``width`` columns are the prompt."""

    def __init__(self, ngram_size: int, width: int) -> None:
        super().__init__(ngram_size)
        self._width = width

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return super().__call__(input_ids[:, self._width :], scores)


def answer_penalties(config: GenerationConfig, width: int) -> LogitsProcessorList:
    """The config's penalties moved into processors that skip a prompt of ``width`` columns."""
    processors = LogitsProcessorList()
    if config.repetition_penalty not in (None, 1.0):
        penalty = float(config.repetition_penalty)
        processors.append(RepetitionPenaltyLogitsProcessor(penalty, prompt_ignore_length=width))
        config.repetition_penalty = 1.0
    if config.no_repeat_ngram_size:
        processors.append(_AnswerNgrams(int(config.no_repeat_ngram_size), width))
        config.no_repeat_ngram_size = 0
    return processors


def _left_pad(old: torch.Tensor, new: torch.Tensor, length: int) -> torch.Tensor:
    """Both caches' (rows, heads, positions, size) tensors, padded to ``length`` positions, stacked."""
    return torch.cat([_pad_to(old, length, 2), _pad_to(new, length, 2)])


def _pad_to(tensor: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    missing = length - tensor.shape[dim]
    if not missing:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim)


def _warpers(config: GenerationConfig) -> LogitsProcessorList:
    """``model.generate``'s sampling warpers for ``config``, in its order."""
    warpers = LogitsProcessorList()
    if config.temperature not in (None, 1.0):
        warpers.append(TemperatureLogitsWarper(float(config.temperature)))
    if config.top_k:
        warpers.append(TopKLogitsWarper(int(config.top_k)))
    if config.top_p not in (None, 1.0):
        warpers.append(TopPLogitsWarper(float(config.top_p)))
    return warpers


def _generator(request: GenerationRequest, device: torch.device) -> torch.Generator | None:
    seed = request.overrides.seed
    return None if seed is None else torch.Generator(device=device).manual_seed(seed)
