"""DP-FedAvg with fixed clipping: clipping bound, noise calibration, determinism."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from flb_dapp.aggregation import (
    ClientUpdate,
    CoordinateMedian,
    DPFixedClipping,
    FedAvg,
    MultiKrum,
    PrivacyEvent,
    l2_norm,
)
from flb_dapp.aggregation.clipping import ScaledTensors, clip_updates
from flb_dapp.aggregation.strategy import validate_updates
from flb_dapp.exceptions import AggregationError


def clipped_uniform_mean(updates: list[ClientUpdate], clip: float) -> dict[str, np.ndarray]:
    """The numpy reference: clip each delta to ``clip`` then take the plain mean."""
    factors = [min(1.0, clip / l2_norm(u.tensors)) for u in updates]
    return {
        key: np.mean(
            [np.asarray(u.tensors[key], np.float64) * f for u, f in zip(updates, factors, strict=True)],
            axis=0,
        )
        for key in updates[0].tensors
    }


@pytest.mark.fuzzing
@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(1e-4, 1e4),
    clip=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**16),
)
def test_a_clipped_delta_never_exceeds_the_clip_norm(make_updates, scale, clip, seed):
    clipped, norms = clip_updates(validate_updates(make_updates(3, seed=seed, scale=scale)), clip)
    for update, norm in zip(clipped, norms, strict=True):
        after = l2_norm(update.tensors)
        assert after <= clip  # strictly, not approximately: the DP bound depends on it
        if norm <= clip:
            assert isinstance(update.tensors, ScaledTensors) and update.tensors.factor == 1.0
        else:
            assert after == pytest.approx(clip, rel=1e-6)


def test_without_noise_equals_clipped_uniform_fedavg(make_updates):
    updates = make_updates(6, scale=2.0)  # norms around 2 * sqrt(27) ~ 10
    clip = 6.0
    result = DPFixedClipping(FedAvg(), clip_norm=clip, noise_multiplier=0.0).aggregate(updates)
    for key, value in clipped_uniform_mean(updates, clip).items():
        np.testing.assert_allclose(result.delta[key], value, rtol=1e-5, atol=1e-6)
    assert result.weights == pytest.approx({u.client: 1 / 6 for u in updates})
    assert 0 < result.metrics["clipped_fraction"] <= 1
    assert result.metrics["noise_std"] == 0.0
    assert result.privacy == PrivacyEvent(noise_multiplier=0.0, num_clients=6, sampling_rate=1.0)


def test_noise_std_is_z_times_clip_over_m():
    # A wide single-key delta so one round gives many noise draws; several rounds for many more.
    m, clip, z = 8, 0.5, 1.3
    rng = np.random.default_rng(0)
    updates = [
        ClientUpdate(f"c{i}", 1, {"w": rng.standard_normal(50_000).astype(np.float32)}) for i in range(m)
    ]
    clean = DPFixedClipping(FedAvg(), clip, 0.0).aggregate(updates).delta["w"].astype(np.float64)
    strategy = DPFixedClipping(FedAvg(), clip_norm=clip, noise_multiplier=z, seed=11)
    noise = np.concatenate([strategy.aggregate(updates, round=r).delta["w"] - clean for r in range(4)])
    expected = z * clip / m
    assert strategy.aggregate(updates).metrics["noise_std"] == pytest.approx(expected)
    assert abs(noise.std() / expected - 1) < 0.05
    assert abs(noise.mean()) < 0.05 * expected


def test_same_seed_and_round_replays_the_noise(make_updates):
    updates = make_updates(4)
    a = DPFixedClipping(FedAvg(), 1.0, 1.0, seed=5).aggregate(updates, round=3)
    b = DPFixedClipping(FedAvg(), 1.0, 1.0, seed=5).aggregate(list(reversed(updates)), round=3)
    c = DPFixedClipping(FedAvg(), 1.0, 1.0, seed=5).aggregate(updates, round=4)
    d = DPFixedClipping(FedAvg(), 1.0, 1.0, seed=6).aggregate(updates, round=3)
    for key in a.delta:
        assert np.array_equal(a.delta[key], b.delta[key])
        assert not np.array_equal(a.delta[key], c.delta[key])
        assert not np.array_equal(a.delta[key], d.delta[key])


def test_unseeded_noise_differs_between_calls(make_updates):
    updates = make_updates(4)
    strategy = DPFixedClipping(FedAvg(), 1.0, 1.0)
    a, b = strategy.aggregate(updates), strategy.aggregate(updates)
    assert not np.array_equal(a.delta["layer.0.lora_A.weight"], b.delta["layer.0.lora_A.weight"])


def test_describe_never_reveals_the_seed():
    described = DPFixedClipping(FedAvg(), 1.0, 0.7, seed=123456789).describe()
    assert described == {
        "name": "dp-fixed-clipping",
        "inner": {"name": "fedavg", "weighting": "samples", "max_samples_per_client": None},
        "clip_norm": 1.0,
        "noise_multiplier": 0.7,
        "sampling_rate": 1.0,
        "seeded": True,
    }
    assert "123456789" not in repr(described)


def test_sample_counts_do_not_weight_dp_fedavg(make_updates):
    updates = make_updates(3, samples=[1, 1, 10**6])
    result = DPFixedClipping(FedAvg(), 100.0, 0.0).aggregate(updates)
    assert result.weights == pytest.approx({"c00": 1 / 3, "c01": 1 / 3, "c02": 1 / 3})


def test_wrapping_a_robust_rule_calibrates_noise_to_its_sensitivity(make_updates):
    updates = make_updates(5)
    median = DPFixedClipping(CoordinateMedian(), clip_norm=1.0, noise_multiplier=1.0, seed=0).aggregate(
        updates
    )
    krum = DPFixedClipping(MultiKrum(1), clip_norm=1.0, noise_multiplier=1.0, seed=0).aggregate(updates)
    assert median.metrics["noise_std"] == pytest.approx(2 * np.sqrt(5))
    assert krum.metrics["noise_std"] == pytest.approx(2.0)
    assert set(krum.excluded) | set(krum.weights) == {u.client for u in updates}


def test_dp_wrapper_reads_each_client_twice(make_updates, counting_mapping):
    # Once to measure the norm, once inside the inner strategy: still streaming.
    lazies = [counting_mapping(dict(u.tensors)) for u in make_updates(3)]
    DPFixedClipping(FedAvg(), 1.0, 1.0, seed=0).aggregate(
        [ClientUpdate(f"c{i}", 1, t) for i, t in enumerate(lazies)]
    )
    for lazy in lazies:
        assert dict(lazy.reads) == dict.fromkeys(lazy, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clip_norm": 0.0}, "DPFixedClipping clip_norm must be a finite number > 0, got 0.0"),
        ({"clip_norm": float("inf")}, "DPFixedClipping clip_norm must be a finite number > 0, got inf"),
        ({"noise_multiplier": -1}, "DPFixedClipping noise_multiplier must be a finite number >= 0, got -1"),
        ({"seed": -3}, "seed must be a non-negative integer or None, got -3"),
        ({"sampling_rate": 1.5}, r"sampling_rate must be in \(0, 1\], got 1.5"),
    ],
)
def test_parameter_validation(kwargs, message):
    params = {"clip_norm": 1.0, "noise_multiplier": 1.0, **kwargs}
    with pytest.raises(AggregationError, match=message):
        DPFixedClipping(FedAvg(), **params)


def test_dp_wrappers_cannot_be_nested():
    with pytest.raises(AggregationError, match="cannot calibrate noise for DPFixedClipping"):
        DPFixedClipping(DPFixedClipping(FedAvg(), 1.0, 1.0), 1.0, 1.0)
    with pytest.raises(AggregationError, match="DPFixedClipping wraps a Strategy, got str"):
        DPFixedClipping("fedavg", 1.0, 1.0)  # type: ignore[arg-type]
