"""Multi-Krum (Blanchard et al. 2017): keep the updates that sit closest to their neighbours.

Each client is scored by the sum of squared distances to its ``n - f - 2`` nearest other clients;
the ``m`` lowest-scoring clients are averaged with equal weights. Outliers (scaled or sign-flipped
updates) are far from every honest update and score badly. The selected clients are averaged
uniformly because sample counts are self-reported and would let an attacker buy weight.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flb_dapp.aggregation.strategy import Strategy
from flb_dapp.aggregation.tensors import l2_norm, stack_key, weighted_sum
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate
from flb_dapp.exceptions import AggregationError


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pairwise_squared_distances(updates: list[ClientUpdate]) -> np.ndarray:
    """``D[i, j] = |x_i - x_j|^2`` over all tensors, accumulated key by key in float64.

    Differences are taken directly rather than through ``|x|^2 + |y|^2 - 2 x.y``, which cancels
    catastrophically when two updates are close, exactly the case Krum has to resolve.
    """
    n = len(updates)
    distances = np.zeros((n, n), dtype=np.float64)
    for key in sorted(updates[0].tensors):
        stacked = stack_key(updates, key).reshape(n, -1).astype(np.float64)
        for i in range(n - 1):
            diff = stacked[i + 1 :] - stacked[i]
            distances[i, i + 1 :] += np.einsum("ij,ij->i", diff, diff)
    return distances + distances.T


class MultiKrum(Strategy):
    """Average of the ``num_selected`` updates with the lowest Krum scores.

    Args:
        num_malicious: ``f``, the number of Byzantine clients to tolerate; needs ``n > 2f + 2``.
        num_selected: ``m``, how many updates to average; ``None`` means ``n - f``. ``m = 1`` is Krum.
    """

    name = "multi-krum"

    def __init__(self, num_malicious: int = 0, num_selected: int | None = None):
        if not _is_int(num_malicious) or num_malicious < 0:
            raise AggregationError(f"MultiKrum num_malicious must be an integer >= 0, got {num_malicious!r}")
        if num_selected is not None and (not _is_int(num_selected) or num_selected < 1):
            raise AggregationError(
                f"MultiKrum num_selected must be an integer >= 1 or None, got {num_selected!r}"
            )
        self.num_malicious = num_malicious
        self.num_selected = num_selected

    def scores(self, distances: np.ndarray) -> np.ndarray:
        """Each client's sum of squared distances to its ``n - f - 2`` nearest other clients."""
        n = distances.shape[0]
        closest = n - self.num_malicious - 2
        # Column 0 of each sorted row is the client's zero distance to itself.
        return np.sort(distances, axis=1)[:, 1 : closest + 1].sum(axis=1)

    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        n, f = len(updates), self.num_malicious
        if n <= 2 * f + 2:
            raise AggregationError(f"MultiKrum needs n > 2f + 2 clients, got n={n}, f={f}")
        m = n - f if self.num_selected is None else self.num_selected
        if m > n:
            raise AggregationError(f"MultiKrum num_selected={m} exceeds the number of clients n={n}")
        scores = self.scores(pairwise_squared_distances(updates))
        # Stable sort over client-sorted updates: ties go to the smaller client id, deterministically.
        order = np.argsort(scores, kind="stable")
        selected = {int(i) for i in order[:m]}
        rank = {int(i): r for r, i in enumerate(order)}
        weights = {updates[i].client: 1.0 / m for i in sorted(selected)}
        excluded = {
            u.client: f"not selected by Multi-Krum (score {scores[i]:.6g}, rank {rank[i] + 1}/{n}, kept {m})"
            for i, u in enumerate(updates)
            if i not in selected
        }
        # Second pass over the selected clients: the selection needs every key's distances first.
        delta = weighted_sum(updates, [weights.get(u.client, 0.0) for u in updates])
        metrics = {
            "num_clients": float(n),
            "num_selected": float(m),
            "max_selected_score": float(max(scores[i] for i in selected)),
            "update_norm": l2_norm(delta),
        }
        return AggregationResult(delta=delta, weights=weights, excluded=excluded, metrics=metrics)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "num_malicious": self.num_malicious, "num_selected": self.num_selected}

    def sensitivity(self, clip_norm: float, num_clients: int) -> float | None:
        # The output is a mean of clipped deltas, so its norm is at most C; one client can change
        # which deltas are selected, so neighbouring outputs can be up to 2C apart.
        return 2.0 * clip_norm
