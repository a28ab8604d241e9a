"""FedAvg (McMahan et al. 2017): the weighted mean of the clients' deltas.

Sample counts are self-reported, so a client can claim a huge data set to dominate the average.
``max_samples_per_client`` caps the count each client is weighted by; ``weighting="uniform"`` ignores
the counts altogether.
"""

from __future__ import annotations

from typing import Any, Literal

from flb_dapp.aggregation.linear import LinearParts
from flb_dapp.aggregation.strategy import Strategy
from flb_dapp.aggregation.tensors import l2_norm, weighted_sum
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate
from flb_dapp.exceptions import AggregationError

Weighting = Literal["samples", "uniform"]


class FedAvg(Strategy):
    """Weighted mean of client deltas, streamed client by client (each tensor read once).

    Args:
        weighting: ``"samples"`` weights each client by its (capped) sample count; ``"uniform"``
            weights every client equally.
        max_samples_per_client: with ``"samples"``, counts above this are treated as this many.
    """

    name = "fedavg"

    def __init__(self, weighting: Weighting = "samples", max_samples_per_client: int | None = None):
        if weighting not in ("samples", "uniform"):
            raise AggregationError(f"FedAvg weighting must be 'samples' or 'uniform', got {weighting!r}")
        if max_samples_per_client is not None and (
            isinstance(max_samples_per_client, bool)
            or not isinstance(max_samples_per_client, int)
            or max_samples_per_client < 1
        ):
            raise AggregationError(
                "FedAvg max_samples_per_client must be a positive integer or None, "
                f"got {max_samples_per_client!r}"
            )
        if weighting == "uniform" and max_samples_per_client is not None:
            raise AggregationError("FedAvg max_samples_per_client only applies to weighting='samples'")
        self.weighting: Weighting = weighting
        self.max_samples_per_client = max_samples_per_client

    def _counts(self, updates: list[ClientUpdate]) -> dict[str, int]:
        """The (capped) sample count each client is weighted by, with "samples" weighting."""
        cap = self.max_samples_per_client
        counts = {u.client: (u.num_samples if cap is None else min(u.num_samples, cap)) for u in updates}
        if sum(counts.values()) == 0:
            raise AggregationError("FedAvg with weighting='samples': every client reported 0 samples")
        return counts

    def client_weights(self, updates: list[ClientUpdate]) -> tuple[dict[str, float], dict[str, str]]:
        """Normalized weights of the included clients, and the clients left out with the reason."""
        if self.weighting == "uniform":
            return {u.client: 1.0 / len(updates) for u in updates}, {}
        counts = self._counts(updates)
        total = sum(counts.values())
        weights = {client: count / total for client, count in counts.items() if count > 0}
        excluded = {client: "reported 0 samples" for client, count in counts.items() if count == 0}
        return weights, excluded

    def raw_weights(self, updates: list[ClientUpdate]) -> tuple[dict[str, float], dict[str, str]]:
        """Unnormalised weights of the included clients (capped counts, or 1 each), and the clients
        left out with the reason: ``client_weights`` is these over their sum."""
        if self.weighting == "uniform":
            return {u.client: 1.0 for u in updates}, {}
        counts = self._counts(updates)
        weights = {client: float(count) for client, count in counts.items() if count > 0}
        excluded = {client: "reported 0 samples" for client, count in counts.items() if count == 0}
        return weights, excluded

    def _linear_parts(self, updates: list[ClientUpdate], round: int) -> LinearParts:
        weights, excluded = self.raw_weights(updates)
        deltas = {u.client: u.tensors for u in updates if u.client in weights}
        return LinearParts(weights=weights, deltas=deltas, excluded=excluded, noise_free=True)

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        weights, excluded = self.client_weights(updates)
        delta = weighted_sum(updates, [weights.get(u.client, 0.0) for u in updates])
        capped = (
            sum(1 for u in updates if u.num_samples > self.max_samples_per_client)
            if self.max_samples_per_client is not None
            else 0
        )
        metrics = {
            "num_clients": float(len(weights)),
            "total_samples": float(sum(u.num_samples for u in updates)),
            "capped_clients": float(capped),
            "max_weight": max(weights.values()),
            "update_norm": l2_norm(delta),
        }
        return AggregationResult(delta=delta, weights=weights, excluded=excluded, metrics=metrics)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weighting": self.weighting,
            "max_samples_per_client": self.max_samples_per_client,
        }

    def sensitivity(self, clip_norm: float, num_clients: int) -> float | None:
        # Only a uniform mean has sensitivity C/m; the DP wrappers hand FedAvg one sample per client,
        # which makes "samples" weighting uniform too.
        return clip_norm / num_clients
