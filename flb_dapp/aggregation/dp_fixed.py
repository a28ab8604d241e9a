"""Server-side DP-FedAvg with a fixed clip norm (McMahan et al. 2018), as a wrapper.

Every client delta is clipped to L2 norm ``C``, the inner strategy combines the clipped deltas with
uniform weights, and Gaussian noise of std ``z * sensitivity`` is added to the result. For FedAvg the
sensitivity of the mean of ``m`` clipped deltas is ``C / m``, so the noise std is ``z * C / m``.
"""

from __future__ import annotations

from typing import Any

from flb_dapp.aggregation.clipping import (
    add_gaussian_noise,
    check_inner,
    check_positive,
    check_sampling_rate,
    clip_updates,
    clipped_linear_parts,
    sensitivity_of,
)
from flb_dapp.aggregation.linear import LinearParts
from flb_dapp.aggregation.strategy import Strategy, check_seed, round_rng
from flb_dapp.aggregation.tensors import l2_norm
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate, PrivacyEvent


class DPFixedClipping(Strategy):
    """Clip each delta to ``clip_norm``, aggregate with ``inner``, add calibrated Gaussian noise.

    Args:
        inner: the strategy that combines clipped deltas (FedAvg for DP-FedAvg).
        clip_norm: ``C``, the L2 bound on each client's delta.
        noise_multiplier: ``z``; the noise std is ``z`` times the inner strategy's sensitivity.
            ``0`` turns the noise off (and the privacy guarantee with it).
        seed: seeds the noise per round; ``None`` draws fresh OS entropy. The seed is secret: anyone
            who knows it can subtract the noise, so :meth:`describe` never reveals it.
        sampling_rate: the Poisson sampling rate of the cohort, for accounting only; leave 1.0
            unless clients really were sampled.

    The reported metrics withhold the inner strategy's own metrics (computed on un-noised data);
    ``clipped_fraction`` is computed from the raw norms and is not privatized.
    """

    name = "dp-fixed-clipping"

    def __init__(
        self,
        inner: Strategy,
        clip_norm: float,
        noise_multiplier: float,
        seed: int | None = None,
        sampling_rate: float = 1.0,
    ):
        self.inner = check_inner("DPFixedClipping", inner)
        self.clip_norm = check_positive("DPFixedClipping clip_norm", clip_norm)
        self.noise_multiplier = check_positive(
            "DPFixedClipping noise_multiplier", noise_multiplier, allow_zero=True
        )
        check_seed(seed)
        self.seed = seed
        self.sampling_rate = check_sampling_rate(sampling_rate)

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        m = len(updates)
        clipped, norms = clip_updates(updates, self.clip_norm)
        inner = self.inner.aggregate(clipped, round)
        sensitivity = sensitivity_of(self.inner, self.clip_norm, m)
        noise_std = self.noise_multiplier * sensitivity
        delta = add_gaussian_noise(inner.delta, noise_std, round_rng(self.seed, round))
        metrics = {
            "num_clients": float(m),
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "sensitivity": sensitivity,
            "noise_std": noise_std,
            "clipped_fraction": sum(1 for n in norms if n > self.clip_norm) / m,
            "update_norm": l2_norm(delta),
        }
        privacy = PrivacyEvent(self.noise_multiplier, m, self.sampling_rate)
        return AggregationResult(delta, inner.weights, inner.excluded, metrics, privacy)

    def _linear_parts(self, updates: list[ClientUpdate], round: int) -> LinearParts | None:
        return clipped_linear_parts(self.inner, updates, self.clip_norm, self.noise_multiplier, round)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner": self.inner.describe(),
            "clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "sampling_rate": self.sampling_rate,
            "seeded": self.seed is not None,
        }
