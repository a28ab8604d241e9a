"""The shared options' choices are the names the code behind them accepts."""

from __future__ import annotations

from typing import get_args

from flb_dapp.aggregation.registry import DP_MODES, STRATEGIES
from flb_dapp.cli import options
from flb_dapp.training.models import Quantization


def test_strategy_and_dp_choices_are_the_registry_names() -> None:
    assert tuple(STRATEGIES) == options.STRATEGY_NAMES
    assert options.DP_MODES == DP_MODES


def test_quantization_choices_are_what_the_model_loader_takes() -> None:
    assert get_args(Quantization) == options.QUANTIZATIONS


def test_benchmark_and_format_choices_are_what_the_evaluation_takes() -> None:
    from flb_dapp.evaluation.benchmarks import BENCHMARKS
    from flb_dapp.evaluation.multiple_choice import FORMULATIONS

    assert tuple(BENCHMARKS) == options.BENCHMARK_NAMES
    assert FORMULATIONS == options.FORMULATIONS
