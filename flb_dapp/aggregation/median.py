"""Coordinate-wise median (Yin et al. 2018): robust to a minority of arbitrarily bad updates.

Each output coordinate is the median of that coordinate over the clients, so fewer than half of the
clients cannot drag it outside the honest clients' range. Sample counts are ignored on purpose:
they are self-reported, and weighting by them would hand an attacker the majority it lacks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flb_dapp.aggregation.strategy import Strategy, coordinatewise_sensitivity, selection_weights
from flb_dapp.aggregation.tensors import l2_norm, stack_key
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate


class CoordinateMedian(Strategy):
    """The coordinate-wise median of the client deltas, computed key by key.

    Memory is one key stacked across clients (``n x`` the largest tensor) plus the output. With an
    even number of clients the median is the mean of the two middle values. A client's weight is
    the share of coordinates where its value was (one of) the median: an outlier's is about zero.
    """

    name = "median"

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        n = len(updates)
        middle = [n // 2] if n % 2 else [n // 2 - 1, n // 2]
        delta: dict[str, np.ndarray] = {}
        chosen = np.zeros(n, dtype=np.float64)
        for key in sorted(updates[0].tensors):
            stacked = stack_key(updates, key)
            # A stable argsort keeps ties in client order, so the credited client is deterministic.
            order = np.argsort(stacked, axis=0, kind="stable")[middle]
            middle_values = np.take_along_axis(stacked, order, axis=0)
            delta[key] = middle_values.mean(axis=0, dtype=np.float64).astype(np.float32)
            chosen += np.bincount(order.ravel(), minlength=n) / len(middle)
        metrics = {"num_clients": float(n), "update_norm": l2_norm(delta)}
        return AggregationResult(delta=delta, weights=selection_weights(updates, chosen), metrics=metrics)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}

    def sensitivity(self, clip_norm: float, num_clients: int) -> float | None:
        return coordinatewise_sensitivity(clip_norm, num_clients)
