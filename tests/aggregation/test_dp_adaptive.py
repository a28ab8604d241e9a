"""DP-FedAvg with adaptive clipping (Andrew et al. 2021)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flb_dapp.aggregation import ClientUpdate, DPAdaptiveClipping, FedAvg, PrivacyEvent
from flb_dapp.aggregation.dp_adaptive import delta_noise_multiplier
from flb_dapp.exceptions import AggregationError


def updates_with_norms(norms: np.ndarray, rng: np.random.Generator) -> list[ClientUpdate]:
    """Clients whose deltas have exactly the given L2 norms (random directions)."""
    updates = []
    for i, norm in enumerate(norms):
        direction = rng.standard_normal(8)
        updates.append(ClientUpdate(f"c{i:03d}", 1, {"w": (direction / np.linalg.norm(direction) * norm)}))
    return updates


@pytest.mark.parametrize("noise_multiplier", [0.0, 1.0])
def test_clip_norm_converges_to_the_target_quantile(noise_multiplier):
    # Norms ~ lognormal(mu=0.5, sigma=0.5): median e^0.5, 0.8-quantile e^(0.5 + 0.5 * 0.8416).
    rng = np.random.default_rng(2024)
    for quantile, true_value in ((0.5, math.exp(0.5)), (0.8, math.exp(0.5 + 0.5 * 0.8416212))):
        strategy = DPAdaptiveClipping(
            FedAvg(), noise_multiplier=noise_multiplier, initial_clip=0.1, target_quantile=quantile, seed=1
        )
        history = []
        for round in range(150):
            updates = updates_with_norms(rng.lognormal(0.5, 0.5, size=100), rng)
            history.append(strategy.aggregate(updates, round=round).metrics["clip_norm"])
        assert history[0] == 0.1
        assert abs(strategy.clip_norm / true_value - 1) < 0.10
        assert abs(np.mean(history[-50:]) / true_value - 1) < 0.05


def test_geometric_update_without_noise():
    rng = np.random.default_rng(0)
    # 3 of 4 norms at or below the clip norm 1.0: unclipped fraction 0.75, target 0.5.
    updates = updates_with_norms(np.array([0.5, 0.9, 1.0, 3.0]), rng)
    strategy = DPAdaptiveClipping(FedAvg(), noise_multiplier=0.0, initial_clip=1.0, clip_lr=0.2)
    result = strategy.aggregate(updates)
    assert result.metrics["noisy_unclipped_fraction"] == 0.75
    assert strategy.clip_norm == pytest.approx(math.exp(-0.2 * 0.25))
    assert result.metrics["next_clip_norm"] == strategy.clip_norm
    assert result.metrics["clip_norm"] == 1.0


def test_noise_multiplier_is_split_between_count_and_delta():
    # z^-2 = z_delta^-2 + (2 sigma_b)^-2
    z, sigma_b = 1.0, 2.0
    z_delta = delta_noise_multiplier(z, sigma_b)
    assert z_delta == pytest.approx((1 - 1 / 16) ** -0.5)
    assert z_delta**-2 + (2 * sigma_b) ** -2 == pytest.approx(z**-2)


def test_round_uses_the_adjusted_noise_and_records_the_total():
    rng = np.random.default_rng(1)
    updates = updates_with_norms(rng.lognormal(0, 0.5, size=40), rng)
    strategy = DPAdaptiveClipping(FedAvg(), noise_multiplier=1.0, initial_clip=0.5, seed=3)
    result = strategy.aggregate(updates)
    sigma_b = 40 / 20
    assert result.metrics["clipped_count_stddev"] == sigma_b
    assert result.metrics["delta_noise_multiplier"] == pytest.approx(delta_noise_multiplier(1.0, sigma_b))
    assert result.metrics["noise_std"] == pytest.approx(delta_noise_multiplier(1.0, sigma_b) * 0.5 / 40)
    assert result.privacy == PrivacyEvent(noise_multiplier=1.0, num_clients=40)


def test_too_few_clients_for_the_default_count_noise_is_explained():
    rng = np.random.default_rng(1)
    updates = updates_with_norms(np.ones(7), rng)
    strategy = DPAdaptiveClipping(FedAvg(), noise_multiplier=1.0)
    with pytest.raises(AggregationError, match=r"needs clipped_count_stddev > z/2 = 0.5, got 0.35"):
        strategy.aggregate(updates)
    assert strategy.clip_norm == 0.1  # a failed round does not move the state
    DPAdaptiveClipping(FedAvg(), noise_multiplier=1.0, clipped_count_stddev=1.0).aggregate(updates)


def test_state_round_trip_replays_the_next_round():
    rng = np.random.default_rng(5)
    rounds = [updates_with_norms(rng.lognormal(0, 0.5, size=30), rng) for _ in range(4)]
    a = DPAdaptiveClipping(FedAvg(), noise_multiplier=0.5, seed=9)
    for r in range(3):
        a.aggregate(rounds[r], round=r)
    saved = a.state()
    assert saved == {"clip_norm": a.clip_norm, "rounds_done": 3}
    b = DPAdaptiveClipping(FedAvg(), noise_multiplier=0.5, seed=9)
    b.load_state(saved)
    ra, rb = a.aggregate(rounds[3], round=3), b.aggregate(rounds[3], round=3)
    assert np.array_equal(ra.delta["w"], rb.delta["w"])
    assert a.state() == b.state()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "state lacks 'clip_norm'"),
        ({"clip_norm": -1.0}, "state clip_norm must be a finite number > 0, got -1.0"),
        ({"clip_norm": 1.0, "rounds_done": -2}, "rounds_done must be an integer >= 0, got -2"),
    ],
)
def test_load_state_validation(state, message):
    with pytest.raises(AggregationError, match=message):
        DPAdaptiveClipping(FedAvg(), 1.0).load_state(state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_clip": 0}, "DPAdaptiveClipping initial_clip must be a finite number > 0, got 0"),
        ({"target_quantile": 1.5}, r"DPAdaptiveClipping target_quantile must be in \[0, 1\], got 1.5"),
        ({"clip_lr": -0.1}, "DPAdaptiveClipping clip_lr must be a finite number > 0, got -0.1"),
        ({"clipped_count_stddev": -1}, "clipped_count_stddev must be a finite number >= 0, got -1"),
        ({"noise_multiplier": float("nan")}, "noise_multiplier must be a finite number >= 0, got nan"),
    ],
)
def test_parameter_validation(kwargs, message):
    params = {"noise_multiplier": 1.0, **kwargs}
    with pytest.raises(AggregationError, match=message):
        DPAdaptiveClipping(FedAvg(), **params)
