"""Coordinate-wise trimmed mean (Yin et al. 2018).

For every coordinate the ``floor(beta * n)`` largest and as many smallest client values are dropped
and the rest averaged: robust to up to that many bad clients, less noisy than the median.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from flb_dapp.aggregation.strategy import Strategy, coordinatewise_sensitivity, selection_weights
from flb_dapp.aggregation.tensors import l2_norm, stack_key
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate
from flb_dapp.exceptions import AggregationError


class TrimmedMean(Strategy):
    """Mean of each coordinate after trimming a ``beta`` fraction of clients from each end.

    Args:
        beta: fraction trimmed from *each* side, in ``[0, 0.5)``; ``0`` is the plain uniform mean.
    """

    name = "trimmed-mean"

    def __init__(self, beta: float = 0.2):
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta < 0.5:
            raise AggregationError(f"TrimmedMean beta must be in [0, 0.5), got {beta}")
        self.beta = float(beta)

    def trimmed_per_side(self, num_clients: int) -> int:
        """How many values are dropped at each end for ``num_clients`` clients."""
        # beta < 0.5 keeps at least one value: 2 * floor(beta * n) < n.
        return math.floor(self.beta * num_clients)

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        n = len(updates)
        k = self.trimmed_per_side(n)
        delta: dict[str, np.ndarray] = {}
        kept = np.zeros(n, dtype=np.int64)
        for key in sorted(updates[0].tensors):
            stacked = stack_key(updates, key)
            # A stable argsort keeps ties in client order, so the kept set is deterministic.
            order = np.argsort(stacked, axis=0, kind="stable")[k : n - k]
            values = np.take_along_axis(stacked, order, axis=0)
            delta[key] = values.mean(axis=0, dtype=np.float64).astype(np.float32)
            kept += np.bincount(order.ravel(), minlength=n)
        metrics = {"num_clients": float(n), "trimmed_per_side": float(k), "update_norm": l2_norm(delta)}
        return AggregationResult(delta=delta, weights=selection_weights(updates, kept), metrics=metrics)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "beta": self.beta}

    def sensitivity(self, clip_norm: float, num_clients: int) -> float | None:
        return coordinatewise_sensitivity(clip_norm, num_clients)
