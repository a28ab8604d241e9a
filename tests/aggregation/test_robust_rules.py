"""Coordinate median, trimmed mean and Multi-Krum on small examples checked by hand."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from flb_dapp.aggregation import ClientUpdate, CoordinateMedian, MultiKrum, TrimmedMean
from flb_dapp.exceptions import AggregationError


def test_median_odd_number_of_clients(single):
    updates = [single("a", [1, 5, 0]), single("b", [2, -1, 0]), single("c", [10, 0, 7])]
    result = CoordinateMedian().aggregate(updates)
    np.testing.assert_array_equal(result.delta["w"], [2, 0, 0])
    # b is the median of coordinates 0 and 2 (the tie 0, 0 goes to the first client id after a), c of 1.
    assert result.weights == pytest.approx({"a": 0.0, "b": 2 / 3, "c": 1 / 3})


def test_median_even_number_of_clients_averages_the_middle_pair(single):
    updates = [single("a", [1]), single("b", [2]), single("c", [3]), single("d", [100])]
    np.testing.assert_array_equal(CoordinateMedian().aggregate(updates).delta["w"], [2.5])


def test_median_ignores_sample_counts(single):
    updates = [single("a", [0], 1), single("b", [1], 1), single("c", [100], 10**9)]
    np.testing.assert_array_equal(CoordinateMedian().aggregate(updates).delta["w"], [1])


def test_trimmed_mean_drops_each_end_per_coordinate(single):
    # n=5, beta=0.2 -> one value dropped at each end of every coordinate independently.
    updates = [
        single("a", [1, 100]),
        single("b", [2, 4]),
        single("c", [3, 3]),
        single("d", [4, 2]),
        single("e", [100, -50]),
    ]
    result = TrimmedMean(beta=0.2).aggregate(updates)
    np.testing.assert_allclose(result.delta["w"], [3.0, 3.0])
    assert result.metrics["trimmed_per_side"] == 1
    # a and e are trimmed from every coordinate, so they carry no weight.
    assert result.weights == pytest.approx({"a": 0.0, "b": 1 / 3, "c": 1 / 3, "d": 1 / 3, "e": 0.0})


def test_trimmed_mean_rounds_the_trim_count_down(single):
    # n=4, beta=0.2 -> floor(0.8) = 0 values trimmed: the plain mean.
    updates = [single("a", [1]), single("b", [2]), single("c", [3]), single("d", [10])]
    np.testing.assert_allclose(TrimmedMean(beta=0.2).aggregate(updates).delta["w"], [4.0])


def test_multi_krum_hand_example(single):
    # f=1, n=5: each score sums the n-f-2 = 2 smallest squared distances to other clients.
    # a=0: {1,4,9,10000} -> 5; b=1: {1,1,4,..} -> 2; c=2: 2; d=3: {9,4,1,..} -> 5; e=100: 9409+9604.
    updates = [single("a", [0]), single("b", [1]), single("c", [2]), single("d", [3]), single("e", [100])]
    result = MultiKrum(num_malicious=1, num_selected=3).aggregate(updates)
    # a and d tie at 5; the tie goes to the smaller client id.
    assert result.weights == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    np.testing.assert_allclose(result.delta["w"], [1.0])
    assert set(result.excluded) == {"d", "e"}
    assert result.excluded["e"].startswith("not selected by Multi-Krum (score 19013, rank 5/5")


def test_multi_krum_default_selects_n_minus_f(single):
    updates = [single(c, [v]) for c, v in zip("abcdef", [0, 1, 2, 3, 4, -1000], strict=True)]
    result = MultiKrum(num_malicious=1).aggregate(updates)
    assert set(result.weights) == {"a", "b", "c", "d", "e"}
    np.testing.assert_allclose(result.delta["w"], [2.0])


def test_multi_krum_distances_sum_over_keys():
    # Two keys: the outlier is only visible in the second one.
    def update(client: str, x: float, y: float) -> ClientUpdate:
        return ClientUpdate(client, 1, {"k1": np.array([x], np.float32), "k2": np.array([y], np.float32)})

    updates = [
        update("a", 0, 0),
        update("b", 0, 0.1),
        update("c", 0, 0.2),
        update("d", 0, 0.3),
        update("e", 0, 50),
    ]
    result = MultiKrum(num_malicious=1, num_selected=1).aggregate(updates)
    assert list(result.weights) in (["b"], ["c"])


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: TrimmedMean(beta=0.6), r"TrimmedMean beta must be in \[0, 0.5\), got 0.6"),
        (lambda: TrimmedMean(beta=-0.1), r"TrimmedMean beta must be in \[0, 0.5\), got -0.1"),
        (lambda: TrimmedMean(beta=0.5), r"TrimmedMean beta must be in \[0, 0.5\), got 0.5"),
        (lambda: MultiKrum(num_malicious=-1), "MultiKrum num_malicious must be an integer >= 0, got -1"),
        (lambda: MultiKrum(num_selected=0), "MultiKrum num_selected must be an integer >= 1 or None, got 0"),
    ],
)
def test_parameter_validation(factory, message):
    with pytest.raises(AggregationError, match=message):
        factory()


def test_multi_krum_needs_enough_clients(make_updates):
    with pytest.raises(AggregationError, match=r"MultiKrum needs n > 2f \+ 2 clients, got n=4, f=2"):
        MultiKrum(num_malicious=2).aggregate(make_updates(4))


def test_multi_krum_cannot_select_more_than_n(make_updates):
    with pytest.raises(AggregationError, match="num_selected=9 exceeds the number of clients n=5"):
        MultiKrum(num_malicious=1, num_selected=9).aggregate(make_updates(5))


@pytest.mark.fuzzing
@settings(max_examples=25, deadline=None)
@given(n=st.integers(5, 8), seed=st.integers(0, 2**16), data=st.data())
def test_robust_rules_ignore_client_order(make_updates, n, seed, data):
    updates = make_updates(n, seed=seed)
    permuted = data.draw(st.permutations(updates))
    for strategy in (CoordinateMedian(), TrimmedMean(0.2), MultiKrum(1, 2)):
        a, b = strategy.aggregate(updates), strategy.aggregate(permuted)
        assert a.weights == b.weights
        assert all(np.array_equal(a.delta[k], b.delta[k]) for k in a.delta)
        assert sum(a.weights.values()) == pytest.approx(1.0)


def test_robust_rules_match_numpy_reference_on_random_data(make_updates):
    updates = make_updates(7, seed=3)
    for key in updates[0].tensors:
        stacked = np.stack([u.tensors[key] for u in updates]).astype(np.float64)
        median = CoordinateMedian().aggregate(updates).delta[key]
        np.testing.assert_allclose(median, np.median(stacked, axis=0), rtol=1e-6)
        trimmed = TrimmedMean(0.2).aggregate(updates).delta[key]
        np.testing.assert_allclose(trimmed, np.sort(stacked, axis=0)[1:6].mean(axis=0), rtol=1e-6, atol=1e-7)
