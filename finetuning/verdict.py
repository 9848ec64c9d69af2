"""The one-line answer of ``finetuning.evaluate``: does the model use its context?

Two conditions, both needed, because each alone misleads:

- the effect is large: the true-context perplexity is at most
  ``MAX_RATIO`` (0.9) times the shuffled-context one. On thousands of
  dialogues a 1% gain is "significant" and still means the context is
  ignored in practice;
- the effect is not noise: true context makes the response more likely
  than another dialogue's context in clearly more dialogues than chance
  would give (one-sided sign test, p < ``MAX_P`` = 0.01; ties, e.g. two
  empty contexts, are left out). On a dozen dialogues one lucky response
  can move the perplexity ratio a lot.

Below ``MIN_DIALOGUES`` scored dialogues there is no verdict either way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAX_RATIO = 0.9
MAX_P = 0.01
MIN_DIALOGUES = 10


@dataclass(frozen=True)
class Verdict:
    uses_context: bool | None  # None: too few dialogues to tell
    ratio: float  # true-context perplexity / shuffled-context perplexity
    wins: int  # dialogues whose response is likelier with its own context
    compared: int  # dialogues without a tie
    p_value: float
    line: str


def sign_test_p(wins: int, compared: int) -> float:
    """P(at least ``wins`` of ``compared`` fair coin flips come up heads)."""
    return sum(math.comb(compared, k) for k in range(wins, compared + 1)) / 2**compared


def context_verdict(true_nll: Sequence[float], shuffled_nll: Sequence[float], n_tokens: int) -> Verdict:
    """From the summed response NLL per dialogue under true and shuffled context."""
    n = len(true_nll)
    ratio = math.exp((sum(true_nll) - sum(shuffled_nll)) / n_tokens)
    wins = sum(t < s for t, s in zip(true_nll, shuffled_nll, strict=True))
    compared = sum(t != s for t, s in zip(true_nll, shuffled_nll, strict=True))
    p = sign_test_p(wins, compared)
    measured = f"true-context perplexity is {ratio:.2f}× the shuffled-context one on {n} dialogues"
    better = f"its own context is likelier in {wins} of {compared}"
    if n < MIN_DIALOGUES:
        uses = None
        line = f"cannot tell whether it uses its context from {n} dialogues (at least {MIN_DIALOGUES} needed)"
        line += f"; true-context perplexity is {ratio:.2f}× the shuffled-context one"
    elif ratio <= MAX_RATIO and p < MAX_P:
        uses, line = True, f"uses its context: {measured}"
    else:
        uses, line = False, f"does not use its context: {measured} ({better}, p={p:.2g})"
    return Verdict(uses, ratio, wins, compared, p, line)
