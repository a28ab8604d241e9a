"""Server-side DP-FedAvg with adaptive clipping (Andrew et al. 2021, "Differentially Private
Learning with Adaptive Clipping"), as a wrapper.

Each round clips at the current norm ``C`` and also releases, with Gaussian noise ``sigma_b``, how
many clients were *not* clipped. The clip norm then moves geometrically toward the
``target_quantile`` of the clients' update norms::

    b = (#{i : |delta_i| <= C} + N(0, sigma_b^2)) / m
    C <- C * exp(-clip_lr * (b - target_quantile))

Releasing the count costs privacy too; the paper splits the budget so that the two Gaussian
queries together are worth one query of noise multiplier ``z``::

    z_delta = (z^-2 - (2 sigma_b)^-2)^(-1/2)

so the accountant records ``z`` per round, and the aggregate itself gets the slightly larger
``z_delta``. The clip norm is state carried across rounds: persist :meth:`state` with the round and
:meth:`load_state` it before re-running or resuming.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from flb_dapp.exceptions import AggregationError


def delta_noise_multiplier(noise_multiplier: float, count_stddev: float) -> float:
    """``z_delta``, the aggregate's share of a total noise multiplier ``z`` (Andrew et al., Thm 1).

    The count query has sensitivity 1/2 (the paper centres each indicator at 1/2), hence ``2 sigma_b``.
    """
    if noise_multiplier == 0:
        return 0.0
    if 2 * count_stddev <= noise_multiplier:
        raise AggregationError(
            f"DPAdaptiveClipping: noise_multiplier z={noise_multiplier} needs clipped_count_stddev > z/2 = "
            f"{noise_multiplier / 2:g}, got {count_stddev:g}; pass a larger clipped_count_stddev "
            "(the default m/20 needs m > 10 z clients)"
        )
    return (noise_multiplier**-2 - (2 * count_stddev) ** -2) ** -0.5


class DPAdaptiveClipping(Strategy):
    """Clip at an adaptively tuned norm, aggregate with ``inner``, add calibrated Gaussian noise.

    Args:
        inner: the strategy that combines clipped deltas (FedAvg for DP-FedAvg).
        noise_multiplier: ``z``, the total noise multiplier the accountant charges per round;
            ``0`` turns both noises off (unless ``clipped_count_stddev`` is given explicitly).
        initial_clip: the clip norm of the first round.
        target_quantile: the fraction of client norms the clip norm should sit above.
        clip_lr: the geometric learning rate of the clip norm.
        clipped_count_stddev: ``sigma_b``, noise on the unclipped count; ``None`` is ``m / 20``
            (the paper's choice) with ``m`` the round's number of clients, or 0 when ``z = 0``.
        seed: seeds both noises per round; secret for the same reason as in DPFixedClipping.
        sampling_rate: the Poisson sampling rate of the cohort, for accounting only.

    As in DPFixedClipping, the inner strategy's own metrics (computed on un-noised data) are
    withheld; the unclipped fraction is reported only in its noised, privatized form.
    """

    name = "dp-adaptive-clipping"

    def __init__(
        self,
        inner: Strategy,
        noise_multiplier: float,
        initial_clip: float = 0.1,
        target_quantile: float = 0.5,
        clip_lr: float = 0.2,
        clipped_count_stddev: float | None = None,
        seed: int | None = None,
        sampling_rate: float = 1.0,
    ):
        self.inner = check_inner("DPAdaptiveClipping", inner)
        self.noise_multiplier = check_positive(
            "DPAdaptiveClipping noise_multiplier", noise_multiplier, allow_zero=True
        )
        self.initial_clip = check_positive("DPAdaptiveClipping initial_clip", initial_clip)
        quantile = check_positive("DPAdaptiveClipping target_quantile", target_quantile, allow_zero=True)
        if quantile > 1:
            raise AggregationError(
                f"DPAdaptiveClipping target_quantile must be in [0, 1], got {target_quantile}"
            )
        self.target_quantile = quantile
        self.clip_lr = check_positive("DPAdaptiveClipping clip_lr", clip_lr)
        self.clipped_count_stddev = (
            None
            if clipped_count_stddev is None
            else check_positive(
                "DPAdaptiveClipping clipped_count_stddev", clipped_count_stddev, allow_zero=True
            )
        )
        check_seed(seed)
        self.seed = seed
        self.sampling_rate = check_sampling_rate(sampling_rate)
        self.clip_norm = self.initial_clip
        self.rounds_done = 0

    def count_stddev(self, num_clients: int) -> float:
        """``sigma_b`` for a round with ``num_clients`` clients."""
        if self.clipped_count_stddev is not None:
            return self.clipped_count_stddev
        return num_clients / 20 if self.noise_multiplier > 0 else 0.0

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        m = len(updates)
        clip_norm = self.clip_norm
        count_stddev = self.count_stddev(m)
        z_delta = delta_noise_multiplier(self.noise_multiplier, count_stddev)
        clipped, norms = clip_updates(updates, clip_norm)
        inner = self.inner.aggregate(clipped, round)
        rng = round_rng(self.seed, round)
        # Fixed draw order (count noise, then the aggregate's noise) so a seed replays the round.
        unclipped = sum(1 for n in norms if n <= clip_norm)
        noisy_unclipped = (unclipped + (rng.normal(0.0, count_stddev) if count_stddev > 0 else 0.0)) / m
        sensitivity = sensitivity_of(self.inner, clip_norm, m)
        noise_std = z_delta * sensitivity
        delta = add_gaussian_noise(inner.delta, noise_std, rng)
        self.clip_norm = clip_norm * math.exp(-self.clip_lr * (noisy_unclipped - self.target_quantile))
        self.rounds_done += 1
        metrics = {
            "num_clients": float(m),
            "clip_norm": clip_norm,
            "next_clip_norm": self.clip_norm,
            "noise_multiplier": self.noise_multiplier,
            "delta_noise_multiplier": z_delta,
            "clipped_count_stddev": count_stddev,
            "sensitivity": sensitivity,
            "noise_std": noise_std,
            # Privatized by the count noise, so it is safe to publish, unlike the raw fraction.
            "noisy_unclipped_fraction": noisy_unclipped,
            "update_norm": l2_norm(delta),
        }
        privacy = PrivacyEvent(self.noise_multiplier, m, self.sampling_rate)
        return AggregationResult(delta, inner.weights, inner.excluded, metrics, privacy)

    def state(self) -> dict[str, Any]:
        """What must survive a restart: the clip norm for the next round (JSON-able)."""
        return {"clip_norm": self.clip_norm, "rounds_done": self.rounds_done}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state`'s output, e.g. from the previous round's report."""
        if "clip_norm" not in state:
            raise AggregationError("DPAdaptiveClipping state lacks 'clip_norm'")
        self.clip_norm = check_positive("DPAdaptiveClipping state clip_norm", state["clip_norm"])
        rounds_done = state.get("rounds_done", 0)
        if isinstance(rounds_done, bool) or not isinstance(rounds_done, int) or rounds_done < 0:
            raise AggregationError(
                f"DPAdaptiveClipping state rounds_done must be an integer >= 0, got {rounds_done!r}"
            )
        self.rounds_done = rounds_done

    def _linear_parts(self, updates: list[ClientUpdate], round: int) -> LinearParts | None:
        return clipped_linear_parts(self.inner, updates, self.clip_norm, self.noise_multiplier, round)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner": self.inner.describe(),
            "noise_multiplier": self.noise_multiplier,
            "initial_clip": self.initial_clip,
            "target_quantile": self.target_quantile,
            "clip_lr": self.clip_lr,
            "clipped_count_stddev": self.clipped_count_stddev,
            "sampling_rate": self.sampling_rate,
            "seeded": self.seed is not None,
        }
