"""What every strategy rejects before combining: the template method's checks."""

from __future__ import annotations

import numpy as np
import pytest

from flb_dapp.aggregation import ClientUpdate, CoordinateMedian, FedAvg, MultiKrum, TrimmedMean
from flb_dapp.exceptions import AggregationError

ALL = [FedAvg(), CoordinateMedian(), TrimmedMean(0.2), MultiKrum(0)]


@pytest.mark.parametrize("strategy", ALL, ids=lambda s: s.name)
def test_empty_update_list(strategy):
    with pytest.raises(AggregationError, match="cannot aggregate an empty list of updates"):
        strategy.aggregate([])


@pytest.mark.parametrize("strategy", ALL, ids=lambda s: s.name)
def test_missing_key_names_client_and_key(strategy, make_updates):
    updates = make_updates(4)
    broken = dict(updates[2].tensors)
    del broken["layer.0.lora_B.weight"]
    updates[2] = ClientUpdate("c02", 5, broken)
    with pytest.raises(AggregationError, match=r"client c02: key 'layer.0.lora_B.weight' is missing"):
        strategy.aggregate(updates)


def test_unexpected_key_names_client_and_key(make_updates):
    updates = make_updates(3)
    updates[1] = ClientUpdate("c01", 5, {**updates[1].tensors, "extra": np.zeros(1, np.float32)})
    with pytest.raises(AggregationError, match=r"client c01: unexpected key 'extra'"):
        FedAvg().aggregate(updates)


@pytest.mark.parametrize("strategy", ALL, ids=lambda s: s.name)
def test_shape_mismatch_names_client_and_key(strategy, make_updates):
    updates = make_updates(4)
    updates[3] = ClientUpdate(
        "c03", 5, {**updates[3].tensors, "layer.1.lora_A.weight": np.zeros(4, np.float32)}
    )
    with pytest.raises(
        AggregationError,
        match=r"client c03: tensor 'layer.1.lora_A.weight' has shape \(4,\), but client c00 sent \(3,\)",
    ):
        strategy.aggregate(updates)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_name_the_client(make_updates, bad):
    updates = make_updates(3)
    poisoned = {k: v.copy() for k, v in updates[1].tensors.items()}
    poisoned["layer.0.lora_A.weight"][0, 0] = bad
    updates[1] = ClientUpdate("c01", 5, poisoned)
    with pytest.raises(
        AggregationError, match=r"client c01: tensor 'layer.0.lora_A.weight' contains NaN or infinite"
    ):
        FedAvg().aggregate(updates)


def test_integer_tensors_are_rejected(make_updates):
    updates = make_updates(2)
    updates[0] = ClientUpdate(
        "c00", 5, {k: np.zeros(v.shape, np.int32) for k, v in updates[0].tensors.items()}
    )
    with pytest.raises(AggregationError, match="has dtype int32, not floating"):
        FedAvg().aggregate(updates)


def test_duplicate_clients_are_rejected(make_updates):
    a, b = make_updates(2)
    with pytest.raises(AggregationError, match="client c00 sent more than one update"):
        FedAvg().aggregate([a, ClientUpdate("c00", 3, b.tensors)])


def test_update_without_tensors():
    with pytest.raises(AggregationError, match="client x sent an update with no tensors"):
        FedAvg().aggregate([ClientUpdate("x", 1, {})])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"client": "", "num_samples": 1}, "non-empty client id"),
        ({"client": "a", "num_samples": -1}, "client a: num_samples must be >= 0, got -1"),
        ({"client": "a", "num_samples": 1.5}, "client a: num_samples must be an integer, got 1.5"),
        ({"client": "a", "num_samples": True}, "client a: num_samples must be an integer, got True"),
    ],
)
def test_client_update_validation(kwargs, message):
    with pytest.raises(AggregationError, match=message):
        ClientUpdate(tensors={}, **kwargs)


def test_negative_round_is_rejected(make_updates):
    with pytest.raises(AggregationError, match="round must be a non-negative integer, got -1"):
        FedAvg().aggregate(make_updates(2), round=-1)


def test_float64_and_float16_inputs_give_float32_output(make_updates):
    a, b = make_updates(2)
    a = ClientUpdate("a", 1, {k: v.astype(np.float64) for k, v in a.tensors.items()})
    b = ClientUpdate("b", 1, {k: v.astype(np.float16) for k, v in b.tensors.items()})
    result = FedAvg().aggregate([a, b])
    assert all(v.dtype == np.float32 for v in result.delta.values())
