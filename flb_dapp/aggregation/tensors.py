"""Tensor helpers shared by the strategies: deltas, norms and streaming sums.

Everything here reads a mapping one key at a time so that a lazy, file-backed mapping never has to
be loaded whole. Norms accumulate in float64 (clipping depends on them being right); weighted sums
stay in float32: the rounding error of a few thousand float32 additions (~1e-6 relative) is far
below SGD and DP noise, and float64 accumulation would double both the time and the memory.
Strategies feed clients in a canonical (client-sorted) order, so the result is reproducible bit for
bit whatever order the updates arrived in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from flb_dapp.aggregation.types import ClientUpdate
from flb_dapp.exceptions import AggregationError


def _same_keys(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], a_name: str, b_name: str) -> None:
    missing = sorted(set(a) - set(b))
    extra = sorted(set(b) - set(a))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{b_name} lacks {missing[:3]}")
        if extra:
            parts.append(f"{b_name} has extra {extra[:3]}")
        raise AggregationError(f"{a_name} and {b_name} have different keys: " + "; ".join(parts))


def _pair(a: np.ndarray, b: np.ndarray, key: str, a_name: str, b_name: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise AggregationError(f"key {key!r}: {a_name} has shape {a.shape}, {b_name} has shape {b.shape}")
    return a, b


def apply_delta(
    global_tensors: Mapping[str, np.ndarray], delta: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``global + delta`` key by key, as float32. Both must have exactly the same keys and shapes."""
    _same_keys(global_tensors, delta, "the global adapter", "the delta")
    out: dict[str, np.ndarray] = {}
    for key in sorted(global_tensors):
        g, d = _pair(global_tensors[key], delta[key], key, "the global adapter", "the delta")
        out[key] = (g.astype(np.float64) + d.astype(np.float64)).astype(np.float32)
    return out


def compute_delta(
    trained: Mapping[str, np.ndarray], global_tensors: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """``trained - global`` key by key, as float32: the update a client submits for aggregation."""
    _same_keys(global_tensors, trained, "the global adapter", "the trained adapter")
    out: dict[str, np.ndarray] = {}
    for key in sorted(global_tensors):
        t, g = _pair(trained[key], global_tensors[key], key, "the trained adapter", "the global adapter")
        out[key] = (t.astype(np.float64) - g.astype(np.float64)).astype(np.float32)
    return out


def squared_norm(array: np.ndarray) -> float:
    """Sum of squares of one array, accumulated in float64 (float32 dot products lose digits)."""
    flat = np.asarray(array, dtype=np.float64).ravel()
    return float(flat @ flat)


def l2_norm(tensors: Mapping[str, np.ndarray]) -> float:
    """The L2 norm of all tensors taken together as one vector, read one key at a time."""
    return math.sqrt(sum(squared_norm(tensors[key]) for key in sorted(tensors)))


def weighted_sum(updates: Sequence[ClientUpdate], weights: Sequence[float]) -> dict[str, np.ndarray]:
    """``sum_i weights[i] * updates[i].tensors`` as float32, streaming client by client.

    Each client's tensors are read exactly once and dropped before the next client's, so memory is
    the accumulator (one adapter) plus one tensor. Clients with weight 0 are not read at all.
    """
    acc: dict[str, np.ndarray] = {}
    for update, weight in zip(updates, weights, strict=True):
        if weight == 0:
            continue
        w = np.float32(weight)
        for key in sorted(update.tensors):
            # Never scale the read array in place: a dict-backed mapping hands out the caller's array.
            term = np.multiply(update.tensors[key], w, dtype=np.float32)
            if key in acc:
                acc[key] += term
            else:
                acc[key] = term
    return acc


def stack_key(updates: Sequence[ClientUpdate], key: str) -> np.ndarray:
    """One key of every client as an ``(n, *shape)`` float32 array: what coordinate-wise rules need."""
    return np.stack([np.asarray(u.tensors[key], dtype=np.float32) for u in updates])
