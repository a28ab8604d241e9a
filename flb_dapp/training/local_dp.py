"""Client-side differential privacy, chosen by :class:`LocalDPConfig.method`:

``"update"`` (this module): clip the client's update ``delta = trained - global`` (all LoRA tensors
together) to L2 norm ``C`` and add Gaussian noise to the *delta*, never to the absolute weights. Any
two datasets give clipped updates inside the same ball of radius ``C``, so the L2 sensitivity of
the released update is ``Δ = 2C``, and the noise is calibrated to it:

* ``calibration="analytic"`` (default; Balle & Wang 2018, Thm. 8): the smallest ``σ`` with
  ``Φ(Δ/(2σ) − εσ/Δ) − e^ε Φ(−Δ/(2σ) − εσ/Δ) ≤ δ``, found by bisection. Exact, valid for any ``ε > 0``.
* ``calibration="classic"`` (Dwork & Roth, Thm. A.1): ``σ = Δ · sqrt(2 ln(1.25/δ)) / ε``, valid for
  ``ε < 1`` only.

One release spends ``(ε, δ)``; composing rounds is the aggregation layer's accountant's job.

``"dp_sgd"`` (see :mod:`flb_dapp.training.dp_sgd`): per-example clipping and noise with Opacus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from flb_dapp.exceptions import AdapterMismatchError, ConfigError
from flb_dapp.lora.adapter import Adapter


@dataclass(frozen=True)
class LocalDPConfig:
    """Privacy settings of one client's round.

    ``noise_seed=None`` draws the noise from OS entropy. A fixed seed makes the noise reproducible,
    which is for tests only: anyone who knows the seed can subtract the noise.
    """

    epsilon: float
    delta: float
    clip_norm: float
    method: Literal["update", "dp_sgd"] = "update"
    calibration: Literal["analytic", "classic"] = "analytic"
    noise_seed: int | None = None
    accountant: Literal["rdp", "prv", "gdp"] = "rdp"  # Opacus accountant, for dp_sgd

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ConfigError(f"epsilon must be > 0, got {self.epsilon}")
        if not 0 < self.delta < 1:
            raise ConfigError(f"delta must be in (0, 1), got {self.delta}")
        if not self.clip_norm > 0:
            raise ConfigError(f"clip_norm must be > 0, got {self.clip_norm}")
        if self.method not in ("update", "dp_sgd"):
            raise ConfigError(f"unknown local DP method {self.method!r}; use 'update' or 'dp_sgd'")
        if self.calibration == "classic" and self.epsilon >= 1:
            raise ConfigError("the classic Gaussian mechanism needs epsilon < 1; use calibration='analytic'")


@dataclass(frozen=True)
class PrivacySpent:
    """What one privatized release cost, and how. Only public values: the update's own norm is not
    here, because publishing it would leak information about the data."""

    mechanism: str
    epsilon: float
    delta: float
    clip_norm: float
    noise_multiplier: float  # sigma / clip_norm (per-sample for DP-SGD)
    sigma: float  # absolute noise std on each coordinate of the update (update mechanism)
    steps: int = 1

    def as_metadata(self) -> dict[str, str]:
        """Header-safe strings for ``Adapter.extra``."""
        return {
            "dp.mechanism": self.mechanism,
            "dp.epsilon": repr(self.epsilon),
            "dp.delta": repr(self.delta),
            "dp.clip_norm": repr(self.clip_norm),
            "dp.noise_multiplier": repr(self.noise_multiplier),
            "dp.sigma": repr(self.sigma),
            "dp.steps": str(self.steps),
        }


def _phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def analytic_delta(sigma: float, epsilon: float, sensitivity: float) -> float:
    """The exact δ of the Gaussian mechanism with noise ``sigma`` at ``epsilon`` (Balle & Wang)."""
    a = sensitivity / (2 * sigma)
    b = epsilon * sigma / sensitivity
    tail = _phi(-a - b)
    # e^ε Φ(.) in log space: e^ε overflows long before Φ underflows to 0 matters.
    second = math.exp(epsilon + math.log(tail)) if tail > 0 else 0.0
    return max(0.0, _phi(a - b) - second)


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float, calibration: str = "analytic") -> float:
    """Noise std making ``x -> f(x) + N(0, σ²I)`` (ε, δ)-DP for L2 sensitivity ``sensitivity``."""
    if calibration == "classic":
        if epsilon >= 1:
            raise ConfigError("the classic Gaussian mechanism needs epsilon < 1")
        return sensitivity * math.sqrt(2 * math.log(1.25 / delta)) / epsilon
    if calibration != "analytic":
        raise ConfigError(f"unknown calibration {calibration!r}; use 'analytic' or 'classic'")
    lo, hi = 1e-12 * sensitivity, sensitivity
    while analytic_delta(hi, epsilon, sensitivity) > delta:
        hi *= 2
    for _ in range(200):  # bisection to float precision; δ(σ) decreases in σ
        mid = (lo + hi) / 2
        if analytic_delta(mid, epsilon, sensitivity) > delta:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return hi


def update_norm(tensors: dict[str, np.ndarray]) -> float:
    """L2 norm over all tensors together, accumulated in float64."""
    return math.sqrt(sum(float(np.sum(np.square(t, dtype=np.float64))) for t in tensors.values()))


def clip_update(delta: dict[str, np.ndarray], clip_norm: float) -> dict[str, np.ndarray]:
    """Scale the whole update so its L2 norm is at most ``clip_norm`` (float32 out, bound exact).

    Rounding to float32 can push a norm scaled to exactly C a hair above it, so the factor is nudged
    down until the float32 result itself satisfies the bound.
    """
    norm = update_norm(delta)
    factor = 1.0 if norm <= clip_norm else clip_norm / norm
    while True:
        clipped = {k: (v.astype(np.float64) * factor).astype(np.float32) for k, v in delta.items()}
        if update_norm(clipped) <= clip_norm:
            return clipped
        factor *= 1 - 1e-7


def privatize_update(
    global_adapter: Adapter, trained: Adapter, dp: LocalDPConfig
) -> tuple[Adapter, PrivacySpent]:
    """``global + clip(trained - global, C) + N(0, σ²)``, with σ calibrated to Δ = 2C and (ε, δ)."""
    if global_adapter.layout() != trained.layout():
        raise AdapterMismatchError("trained adapter and global adapter have different tensors")
    delta = {
        k: trained.tensors[k].astype(np.float64) - global_adapter.tensors[k].astype(np.float64)
        for k in sorted(trained.tensors)
    }
    clipped = clip_update(delta, dp.clip_norm)
    sigma = gaussian_sigma(dp.epsilon, dp.delta, 2 * dp.clip_norm, dp.calibration)
    rng = np.random.default_rng(dp.noise_seed)
    tensors = {}
    for k, c in clipped.items():
        noisy = c.astype(np.float64) + rng.normal(0.0, sigma, size=c.shape)
        tensors[k] = (global_adapter.tensors[k].astype(np.float64) + noisy).astype(np.float32)
    spent = PrivacySpent(
        mechanism=f"gaussian-update/{dp.calibration}",
        epsilon=dp.epsilon,
        delta=dp.delta,
        clip_norm=dp.clip_norm,
        noise_multiplier=sigma / dp.clip_norm,
        sigma=sigma,
    )
    extra = {**trained.extra, **spent.as_metadata()}
    return Adapter(tensors=tensors, metadata=trained.metadata, extra=extra), spent
