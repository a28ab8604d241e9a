"""Scores reproducible to a declared precision: the round's scorer with every evaluation loss
rounded to ``score_decimals`` (``RoundRules``), so contributions and rewards are computed from the
rounded values and a verifier whose losses differ far below the rounding (``score_dtype``
float64) reproduces them bit for bit."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from flb_dapp.exceptions import RoundError
from flb_dapp.rounds.coalitions import evaluate_all


class RoundedScorer:
    """``scorer`` whose results carry their loss rounded to ``decimals``."""

    def __init__(self, scorer: Any, decimals: int) -> None:
        self.scorer = scorer
        self.decimals = decimals
        # a batching scorer stays one: its batches are rounded the same way
        self.parallelism = getattr(scorer, "parallelism", 1)

    def evaluate(self, adapter: Any = None) -> Any:
        return self._rounded(self.scorer.evaluate(adapter))

    def evaluate_many(self, adapters: Any) -> list[Any]:
        return [self._rounded(result) for result in evaluate_all(self.scorer, adapters)]

    def _rounded(self, result: Any) -> Any:
        if not math.isfinite(result.loss):
            return result
        return dataclasses.replace(result, loss=round(result.loss, self.decimals))


def round_scorer(scorer: Any, dtype: str, decimals: int | None) -> Any:
    """The scorer a round evaluates with. With exact scores (``decimals`` set) it must compute in
    the declared dtype: float32 losses vary across kernels at the 7th digit, so rounding them
    would hide nothing and break the promise."""
    if decimals is None:
        return scorer
    actual = getattr(scorer, "dtype", None)
    if actual is not None and actual != dtype:
        raise RoundError(f"the scorer evaluates in {actual}, the round rules declare score_dtype {dtype}")
    return RoundedScorer(scorer, decimals)
