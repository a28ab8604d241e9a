"""Local DP on the update: clip the delta to C, Gaussian noise calibrated to C and (epsilon, delta)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flb_dapp.evaluation.task import SyntheticTask
from flb_dapp.exceptions import ConfigError
from flb_dapp.lora.adapter import Adapter, AdapterMetadata
from flb_dapp.training.local_dp import (
    LocalDPConfig,
    analytic_delta,
    clip_update,
    gaussian_sigma,
    privatize_update,
    update_norm,
)
from flb_dapp.training.lora_init import initial_adapter
from flb_dapp.training.trainer import TrainConfig, train_client

META = AdapterMetadata(base_model="m", r=2, lora_alpha=4, target_modules=("q_proj",))


def adapter(tensors: dict[str, np.ndarray]) -> Adapter:
    return Adapter({k: v.astype(np.float32) for k, v in tensors.items()}, META)


@pytest.mark.fuzzing
@settings(max_examples=60, deadline=None)
@given(
    scale=st.floats(1e-6, 1e4),
    clip=st.floats(1e-3, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_clipped_update_never_exceeds_c(scale: float, clip: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    delta = {
        "a": (rng.normal(size=(3, 17)) * scale).astype(np.float32),
        "b": rng.normal(size=(5,)).astype(np.float32),
    }
    clipped = clip_update(delta, clip)
    assert update_norm(clipped) <= clip  # exactly, in float32
    if update_norm(delta) <= clip:
        assert all(np.array_equal(clipped[k], delta[k]) for k in delta)  # small updates untouched
    else:
        assert update_norm(clipped) == pytest.approx(clip, rel=1e-6)
        ratio = clipped["a"].astype(np.float64) / np.where(delta["a"] == 0, 1, delta["a"])
        assert np.allclose(
            ratio[delta["a"] != 0], ratio[delta["a"] != 0].flat[0], rtol=1e-5
        )  # direction kept


def test_sigma_formulas() -> None:
    c, eps, delta = 0.5, 0.5, 1e-5
    classic = gaussian_sigma(eps, delta, 2 * c, "classic")
    assert classic == pytest.approx(2 * c * math.sqrt(2 * math.log(1.25 / delta)) / eps, rel=1e-12)
    analytic = gaussian_sigma(eps, delta, 2 * c)
    assert analytic < classic  # the exact calibration is tighter
    assert analytic_delta(analytic, eps, 2 * c) <= delta
    assert analytic_delta(analytic * 0.999, eps, 2 * c) > delta  # and the smallest such sigma
    assert gaussian_sigma(8.0, delta, 4.0) == pytest.approx(2 * gaussian_sigma(8.0, delta, 2.0), rel=1e-9)


def test_noise_is_on_the_delta_with_the_calibrated_std() -> None:
    rng = np.random.default_rng(0)
    # A global with large absolute weights: noise or clipping on absolute weights would be obvious.
    g = adapter({"a": rng.normal(50, 1, size=(200, 500)), "b": rng.normal(-50, 1, size=(100, 100))})
    trained = adapter({k: v + rng.normal(0, 0.01, size=v.shape) for k, v in g.tensors.items()})
    dp = LocalDPConfig(epsilon=2.0, delta=1e-5, clip_norm=0.1, noise_seed=1)
    out, spent = privatize_update(g, trained, dp)
    sigma = gaussian_sigma(2.0, 1e-5, 0.2)
    assert spent.sigma == sigma and spent.noise_multiplier == pytest.approx(sigma / 0.1)
    clipped = clip_update({k: trained.tensors[k].astype(np.float64) - g.tensors[k] for k in g.tensors}, 0.1)
    noise = np.concatenate(
        [(out.tensors[k].astype(np.float64) - g.tensors[k] - clipped[k]).ravel() for k in g.tensors]
    )
    assert noise.size == 110_000
    assert noise.std() == pytest.approx(sigma, rel=0.05)
    assert abs(noise.mean()) < 5 * sigma / math.sqrt(noise.size)
    assert out.extra["dp.mechanism"] == "gaussian-update/analytic" and out.extra["dp.epsilon"] == "2.0"


def test_tiny_noise_leaves_global_plus_clipped_delta() -> None:
    rng = np.random.default_rng(1)
    g = adapter({"a": rng.normal(100, 1, size=(10, 10))})
    trained = adapter({"a": g.tensors["a"] + 1.0})  # update norm 10
    out, _ = privatize_update(g, trained, LocalDPConfig(epsilon=1e6, delta=0.5, clip_norm=1.0, noise_seed=0))
    delta = out.tensors["a"].astype(np.float64) - g.tensors["a"]
    assert np.allclose(delta, 0.1, atol=1e-2)  # clipped to norm 1 over 100 coordinates
    assert np.allclose(out.tensors["a"], g.tensors["a"] + 0.1, atol=1e-2)  # absolute weights not rescaled


def test_fixed_noise_seed_reproduces_os_entropy_does_not() -> None:
    g = adapter({"a": np.zeros((4, 4))})
    t = adapter({"a": np.ones((4, 4))})
    seeded = LocalDPConfig(epsilon=1.0, delta=1e-5, clip_norm=1.0, noise_seed=3)
    fresh = LocalDPConfig(epsilon=1.0, delta=1e-5, clip_norm=1.0)
    assert np.array_equal(
        privatize_update(g, t, seeded)[0].tensors["a"], privatize_update(g, t, seeded)[0].tensors["a"]
    )
    assert not np.array_equal(
        privatize_update(g, t, fresh)[0].tensors["a"], privatize_update(g, t, fresh)[0].tensors["a"]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"epsilon": 0.0, "delta": 1e-5, "clip_norm": 1.0},
        {"epsilon": 1.0, "delta": 1.0, "clip_norm": 1.0},
        {"epsilon": 1.0, "delta": 1e-5, "clip_norm": 0.0},
        {"epsilon": 2.0, "delta": 1e-5, "clip_norm": 1.0, "calibration": "classic"},
        {"epsilon": 1.0, "delta": 1e-5, "clip_norm": 1.0, "method": "laplace"},
    ],
)
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        LocalDPConfig(**kwargs)  # type: ignore[arg-type]


def test_train_client_applies_update_dp(tiny_model: Path, task: SyntheticTask) -> None:
    start = initial_adapter(tiny_model, r=4, alpha=8, seed=0)
    dp = LocalDPConfig(epsilon=4.0, delta=1e-5, clip_norm=0.05, noise_seed=0)
    cfg = TrainConfig(
        model=str(tiny_model), steps=2, r=4, alpha=8, batch_size=4, max_seq_len=128, local_dp=dp
    )
    noisy = train_client(cfg, task.train[:8], start)
    assert noisy.metrics["dp_epsilon"] == 4.0 and noisy.metrics["dp_sigma"] == gaussian_sigma(4.0, 1e-5, 0.1)
    assert noisy.adapter.extra["dp.clip_norm"] == "0.05"
    delta = {k: noisy.adapter.tensors[k].astype(np.float64) - start.tensors[k] for k in start.tensors}
    # Noise of std sigma on every coordinate dominates the clipped (<= 0.05) update.
    n = sum(v.size for v in delta.values())
    assert update_norm(delta) == pytest.approx(noisy.metrics["dp_sigma"] * math.sqrt(n), rel=0.05)
