"""Screening a round's updates against participants who lie: rules that need the whole round.

The per-update checks (decoding, metadata, sample cap, norm bounds) live in the round computation;
this module owns the rules that compare updates with each other:

* near-duplicates: the cosine similarity of two clients' deltas above a threshold means one copied
  the other (an exact re-encoding gives 1.0, a copy with a little noise 0.99+); the later one in
  chain order is rejected, so a copy never earns what the original earns;
* the relative norm rule (off by default): an update whose norm exceeds a multiple of the median.
  The median of self-selected participants is steerable by Sybils, which is why the absolute bound
  of the task is the default defence (README, "Security model").

Pure functions over NumPy arrays; deterministic given their inputs and their order.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Copy:
    """``client`` submitted a near-duplicate of ``original``'s update (earlier in chain order)."""

    client: str
    original: str
    cosine: float


def flatten(delta: Mapping[str, np.ndarray]) -> np.ndarray:
    """One float64 vector of a delta, keys in sorted order (so every party gets the same vector)."""
    if not delta:
        return np.zeros(0)
    return np.concatenate([np.asarray(delta[k], dtype=np.float64).ravel() for k in sorted(delta)])


def find_copies(vectors: Sequence[tuple[str, np.ndarray]], threshold: float) -> list[Copy]:
    """The near-duplicates among ``vectors`` (client, flattened delta), in chain order.

    Each vector is compared with every earlier vector that is not itself a copy; a zero vector is
    never a copy (the norm rule handles it). Cost: one Gram matrix, O(n^2 d).
    """
    if len(vectors) < 2:
        return []
    matrix = np.stack([v for _, v in vectors])
    norms = np.linalg.norm(matrix, axis=1)
    gram = matrix @ matrix.T
    copies: list[Copy] = []
    copied: set[int] = set()
    for later in range(1, len(vectors)):
        if norms[later] == 0:
            continue
        for earlier in range(later):
            if earlier in copied or norms[earlier] == 0:
                continue
            cosine = float(gram[later, earlier] / (norms[later] * norms[earlier]))
            if cosine >= threshold:
                copies.append(Copy(vectors[later][0], vectors[earlier][0], cosine))
                copied.add(later)
                break
    return copies


def relative_outliers(norms: Mapping[str, float], factor: float) -> dict[str, str]:
    """Clients whose norm exceeds ``factor`` x the median norm, with the reason (3+ updates only)."""
    if len(norms) < 3:
        return {}
    median = statistics.median(norms.values())
    if median <= 0:
        return {}
    bound = factor * median
    return {
        client: f"update norm {norm:.4g} exceeds {factor:g} x the median norm {median:.4g}"
        for client, norm in norms.items()
        if norm > bound
    }
