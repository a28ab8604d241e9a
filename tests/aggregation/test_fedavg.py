"""FedAvg against a numpy reference, plus the interface's validation and streaming behaviour."""

from __future__ import annotations

import re

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from flb_dapp.aggregation import ClientUpdate, FedAvg
from flb_dapp.exceptions import AggregationError


def reference_mean(updates: list[ClientUpdate], weights: list[float]) -> dict[str, np.ndarray]:
    w = np.asarray(weights, dtype=np.float64) / sum(weights)
    return {
        key: np.tensordot(w, np.stack([np.asarray(u.tensors[key], np.float64) for u in updates]), axes=1)
        for key in updates[0].tensors
    }


def test_fedavg_equals_sample_weighted_mean(make_updates):
    updates = make_updates(5, samples=[10, 20, 30, 5, 35])
    result = FedAvg().aggregate(updates)
    expected = reference_mean(updates, [10, 20, 30, 5, 35])
    assert set(result.delta) == set(expected)
    for key, value in expected.items():
        assert result.delta[key].dtype == np.float32
        np.testing.assert_allclose(result.delta[key], value, rtol=1e-6, atol=1e-7)
    assert result.weights == pytest.approx({"c00": 0.1, "c01": 0.2, "c02": 0.3, "c03": 0.05, "c04": 0.35})
    assert result.excluded == {}
    assert result.privacy is None


def test_cap_limits_a_client_claiming_a_huge_dataset(make_updates):
    updates = make_updates(3, samples=[100, 100, 1_000_000])
    result = FedAvg(max_samples_per_client=200).aggregate(updates)
    assert result.weights == pytest.approx({"c00": 0.25, "c01": 0.25, "c02": 0.5})
    expected = reference_mean(updates, [100, 100, 200])
    for key, value in expected.items():
        np.testing.assert_allclose(result.delta[key], value, rtol=1e-6, atol=1e-7)
    assert result.metrics["capped_clients"] == 1


def test_uniform_weighting_ignores_sample_counts(make_updates):
    updates = make_updates(4, samples=[1, 2, 3, 1000])
    result = FedAvg(weighting="uniform").aggregate(updates)
    assert result.weights == pytest.approx(dict.fromkeys(["c00", "c01", "c02", "c03"], 0.25))
    for key, value in reference_mean(updates, [1, 1, 1, 1]).items():
        np.testing.assert_allclose(result.delta[key], value, rtol=1e-6, atol=1e-7)


def test_zero_sample_clients_are_excluded_and_not_read(make_updates, counting_mapping):
    updates = make_updates(3, samples=[5, 0, 5])
    lazy = counting_mapping(dict(updates[1].tensors))
    updates[1] = ClientUpdate("c01", 0, lazy)
    result = FedAvg().aggregate(updates)
    assert result.excluded == {"c01": "reported 0 samples"}
    assert set(result.weights) == {"c00", "c02"}
    assert sum(lazy.reads.values()) == 0


def test_every_client_reporting_zero_samples_is_an_error(make_updates):
    with pytest.raises(AggregationError, match="every client reported 0 samples"):
        FedAvg().aggregate(make_updates(2, samples=[0, 0]))


def test_fedavg_reads_each_client_tensor_exactly_once(make_updates, counting_mapping):
    lazies = [counting_mapping(dict(u.tensors)) for u in make_updates(4)]
    updates = [ClientUpdate(f"c{i}", 10 + i, lazy) for i, lazy in enumerate(lazies)]
    FedAvg().aggregate(updates)
    for lazy in lazies:
        assert dict(lazy.reads) == dict.fromkeys(lazy, 1)


@pytest.mark.fuzzing
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 7), seed=st.integers(0, 2**16), data=st.data())
def test_client_order_does_not_change_the_result(make_updates, n, seed, data):
    updates = make_updates(n, seed=seed)
    permuted = data.draw(st.permutations(updates))
    a, b = FedAvg().aggregate(updates), FedAvg().aggregate(permuted)
    assert a.weights == b.weights
    for key in a.delta:
        # Canonical (client-sorted) order makes the result bit-identical, not merely close.
        assert np.array_equal(a.delta[key], b.delta[key])


@pytest.mark.fuzzing
@settings(max_examples=40, deadline=None)
@given(samples=st.lists(st.integers(0, 10**9), min_size=1, max_size=8), cap=st.none() | st.integers(1, 10**6))
def test_weights_sum_to_one(make_updates, samples, cap):
    updates = make_updates(len(samples), samples=samples)
    if sum(min(s, cap) if cap else s for s in samples) == 0:
        return
    result = FedAvg(max_samples_per_client=cap).aggregate(updates)
    assert sum(result.weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert set(result.weights) | set(result.excluded) == {u.client for u in updates}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"weighting": "median"}, "FedAvg weighting must be 'samples' or 'uniform', got 'median'"),
        ({"max_samples_per_client": 0}, "max_samples_per_client must be a positive integer or None, got 0"),
        ({"weighting": "uniform", "max_samples_per_client": 5}, "only applies to weighting='samples'"),
    ],
)
def test_fedavg_parameter_validation(kwargs, message):
    with pytest.raises(AggregationError, match=re.escape(message)):
        FedAvg(**kwargs)


def test_describe_is_json_able():
    import json

    assert json.loads(json.dumps(FedAvg(max_samples_per_client=500).describe())) == {
        "name": "fedavg",
        "weighting": "samples",
        "max_samples_per_client": 500,
    }
