"""Exact scores: losses rounded to the declared decimals before anything is computed from them,
a scorer in another dtype than declared refused, and the rules in the report only once set."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest

from flb_dapp.exceptions import RoundError
from flb_dapp.rounds import RoundSettings
from flb_dapp.rounds.precision import RoundedScorer, round_scorer


@dataclass(frozen=True)
class Result:
    accuracy: float
    loss: float


class Scorer:
    dtype = "float64"

    def __init__(self, loss: float) -> None:
        self.loss = loss

    def evaluate(self, adapter: Any = None) -> Result:
        return Result(0.5, self.loss)


def test_losses_are_rounded_to_the_declared_decimals() -> None:
    rounded = round_scorer(Scorer(1.234567891234), "float64", 8)
    assert isinstance(rounded, RoundedScorer)
    assert rounded.evaluate() == Result(0.5, 1.23456789)
    # Two losses that differ far below the rounding give the same value, bit for bit.
    assert (
        RoundedScorer(Scorer(2.0000000012), 8).evaluate().loss
        == RoundedScorer(Scorer(2.0000000008), 8).evaluate().loss
    )
    assert math.isnan(RoundedScorer(Scorer(float("nan")), 8).evaluate().loss)
    plain = Scorer(1.5)
    assert round_scorer(plain, "float64", None) is plain


def test_a_scorer_in_another_dtype_is_refused() -> None:
    with pytest.raises(
        RoundError, match="the scorer evaluates in float64, the round rules declare score_dtype float32"
    ):
        round_scorer(Scorer(1.0), "float32", 8)
    assert round_scorer(Scorer(1.0), "float32", None).loss == 1.0  # without exact scores: as it is


def test_rules_are_recorded_once_set() -> None:
    assert (
        "score_dtype" not in RoundSettings().describe() and "score_decimals" not in RoundSettings().describe()
    )
    described = RoundSettings(score_dtype="float64", score_decimals=8).describe()
    assert (described["score_dtype"], described["score_decimals"]) == ("float64", 8)
    assert RoundSettings.from_description(described).score_decimals == 8
    with pytest.raises(RoundError, match=r"score_decimals must be 0 \.\. 15 or unset, got 16"):
        RoundSettings(score_decimals=16)
