"""make_strategy: CLI names to strategies, and describe() back to a strategy."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flb_dapp.aggregation import (
    STRATEGIES,
    CoordinateMedian,
    DPAdaptiveClipping,
    DPFixedClipping,
    FedAvg,
    MultiKrum,
    TrimmedMean,
    from_description,
    make_strategy,
)
from flb_dapp.exceptions import AggregationError


def test_names_map_to_rules():
    assert set(STRATEGIES) == {"fedavg", "median", "trimmed-mean", "multi-krum"}
    assert isinstance(make_strategy("fedavg"), FedAvg)
    assert isinstance(make_strategy("median"), CoordinateMedian)
    assert make_strategy("trimmed-mean", beta=0.1).describe() == {"name": "trimmed-mean", "beta": 0.1}
    krum = make_strategy("multi-krum", num_malicious=2, num_selected=3)
    assert isinstance(krum, MultiKrum) and (krum.num_malicious, krum.num_selected) == (2, 3)
    capped = make_strategy("fedavg", max_samples_per_client=100)
    assert isinstance(capped, FedAvg) and capped.max_samples_per_client == 100


def test_dp_options_wrap_the_rule():
    fixed = make_strategy("trimmed-mean", dp="fixed", beta=0.1, clip_norm=2.0, noise_multiplier=0.5, seed=1)
    assert isinstance(fixed, DPFixedClipping) and isinstance(fixed.inner, TrimmedMean)
    assert (fixed.clip_norm, fixed.noise_multiplier, fixed.seed, fixed.inner.beta) == (2.0, 0.5, 1, 0.1)
    adaptive = make_strategy("fedavg", dp="adaptive", noise_multiplier=1.0, target_quantile=0.7)
    assert isinstance(adaptive, DPAdaptiveClipping) and adaptive.target_quantile == 0.7
    assert isinstance(make_strategy("median", dp="none"), CoordinateMedian)


def test_seed_is_accepted_and_unused_without_dp():
    assert isinstance(make_strategy("median", seed=7), CoordinateMedian)
    assert make_strategy("fedavg", dp="fixed", clip_norm=1.0, noise_multiplier=1.0, seed=7).seed == 7


def test_none_values_mean_not_given():
    # What an argparse namespace holds for flags the user left out.
    strategy = make_strategy("trimmed-mean", dp=None, beta=None, clip_norm=None)
    assert isinstance(strategy, TrimmedMean) and strategy.beta == 0.2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: make_strategy("krum"), "unknown strategy 'krum'; choose one of"),
        (
            lambda: make_strategy("fedavg", dp="local"),
            r"unknown dp mode 'local'; choose one of \['none', 'fixed'",
        ),
        (
            lambda: make_strategy("median", beta=0.1),
            r"unknown parameter 'beta' for strategy 'median'; accepted: \[\]",
        ),
        (
            lambda: make_strategy("fedavg", clip_norm=1.0),
            "unknown parameter 'clip_norm' for strategy 'fedavg';",
        ),
        (
            lambda: make_strategy("fedavg", dp="fixed", noise_multiplier=1.0),
            "dp='fixed' needs clip_norm",
        ),
        (lambda: make_strategy("trimmed-mean", beta=0.6), r"TrimmedMean beta must be in \[0, 0.5\), got 0.6"),
        (lambda: make_strategy("fedavg", dp="adaptive"), "dp='adaptive' needs noise_multiplier"),
    ],
)
def test_errors(call, message):
    with pytest.raises(AggregationError, match=message):
        call()


@pytest.mark.parametrize(
    "strategy",
    [
        FedAvg(max_samples_per_client=10),
        FedAvg(weighting="uniform"),
        CoordinateMedian(),
        TrimmedMean(0.3),
        MultiKrum(1, 2),
        DPFixedClipping(MultiKrum(1), 0.5, 1.2, seed=3, sampling_rate=0.1),
        DPAdaptiveClipping(FedAvg(), 1.0, initial_clip=0.3, clipped_count_stddev=2.0, seed=3),
    ],
    ids=repr,
)
def test_description_round_trip(strategy, make_updates):
    description = json.loads(json.dumps(strategy.describe()))
    rebuilt = from_description(description, seed=3)
    assert rebuilt.describe() == strategy.describe()
    updates = make_updates(6, seed=1)
    a, b = strategy.aggregate(updates, round=2), rebuilt.aggregate(updates, round=2)
    assert all(np.array_equal(a.delta[k], b.delta[k]) for k in a.delta)


def test_malformed_descriptions():
    with pytest.raises(AggregationError, match="cannot rebuild a strategy from description with name 'x'"):
        from_description({"name": "x"})
    with pytest.raises(
        AggregationError, match=r"malformed 'median' strategy description: .*takes no arguments"
    ):
        from_description({"name": "median", "beta": 0.1})
    with pytest.raises(AggregationError, match="malformed 'dp-fixed-clipping' strategy description"):
        from_description({"name": "dp-fixed-clipping", "clip_norm": 1.0, "noise_multiplier": 1.0})
