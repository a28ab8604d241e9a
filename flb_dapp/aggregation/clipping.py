"""What the two DP wrappers share: L2 clipping of client deltas and Gaussian noise on the aggregate.

Clipping is lazy: a clipped update is a view that scales each tensor as it is read, so wrapping a
streaming strategy keeps it streaming. The wrapper reads each client once to measure its norm and
the inner strategy reads it again; two passes over a file-backed update cost I/O, not memory.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np

from flb_dapp.aggregation.linear import LinearParts
from flb_dapp.aggregation.strategy import Strategy, VerifiedTensors
from flb_dapp.aggregation.tensors import l2_norm
from flb_dapp.aggregation.types import ClientUpdate
from flb_dapp.exceptions import AggregationError

# Each float32 product x * f is rounded by at most a factor (1 + 2^-24); shrinking f by 2^-22 more
# than absorbs it, so a clipped delta's norm never exceeds the clip norm (the DP bound is strict).
_ROUNDING_MARGIN = 1.0 - 2.0**-22


class ScaledTensors(VerifiedTensors):
    """A client's (already checked) tensors multiplied by ``factor`` as each one is read."""

    def __init__(self, base: VerifiedTensors, factor: float):
        self._base = base
        self.factor = factor

    def __getitem__(self, key: str) -> np.ndarray:
        array = self._base[key]
        if self.factor == 1.0:
            return array
        return np.multiply(array, self.factor, dtype=np.float64).astype(np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def clip_factor(norm: float, clip_norm: float) -> float:
    """The factor that brings a delta of L2 norm ``norm`` within ``clip_norm`` (1 if it already is)."""
    if norm <= clip_norm:
        return 1.0
    return clip_norm / norm * _ROUNDING_MARGIN


def clip_updates(updates: Sequence[ClientUpdate], clip_norm: float) -> tuple[list[ClientUpdate], list[float]]:
    """Clip every delta to ``clip_norm``; return the clipped updates and the original norms.

    The clipped updates carry one sample each: DP-FedAvg needs uniform weights, since a
    self-reported count would let one client's weight, and so the sensitivity, grow without bound.
    """
    clipped: list[ClientUpdate] = []
    norms: list[float] = []
    for update in updates:
        if not isinstance(update.tensors, VerifiedTensors):
            raise TypeError("clip_updates expects updates validated by Strategy.aggregate")
        norm = l2_norm(update.tensors)
        norms.append(norm)
        clipped.append(
            ClientUpdate(update.client, 1, ScaledTensors(update.tensors, clip_factor(norm, clip_norm)))
        )
    return clipped, norms


def clipped_linear_parts(
    inner: Strategy, updates: Sequence[ClientUpdate], clip_norm: float, noise_multiplier: float, round: int
) -> LinearParts | None:
    """A DP wrapper's linear parts: the inner rule's parts over the clipped deltas, *before* the
    noise (every subset's aggregate would get the same noise draw, which adds variance to a
    comparison of subsets and nothing else). ``None`` when the inner rule is not linear. Draws
    nothing, changes no state."""
    clipped, _ = clip_updates(updates, clip_norm)
    parts = inner.linear_parts(clipped, round)
    if parts is None:
        return None
    return replace(parts, noise_free=parts.noise_free and noise_multiplier == 0)


def add_gaussian_noise(
    delta: dict[str, np.ndarray], std: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """``delta + N(0, std^2)`` per coordinate, drawn key by key in sorted order (so a seed replays it)."""
    if std == 0:
        return delta
    return {
        key: (delta[key] + rng.normal(0.0, std, size=delta[key].shape)).astype(np.float32)
        for key in sorted(delta)
    }


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A finite float > 0 (or >= 0), else an ``AggregationError`` naming the parameter."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value < 0 if allow_zero else value <= 0):  # type: ignore[operator]
        bound = ">= 0" if allow_zero else "> 0"
        raise AggregationError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_inner(owner: str, inner: object) -> Strategy:
    """The inner strategy of a DP wrapper must be a Strategy with a known sensitivity."""
    if not isinstance(inner, Strategy):
        raise AggregationError(f"{owner} wraps a Strategy, got {type(inner).__name__}")
    if inner.sensitivity(1.0, 1) is None:
        raise AggregationError(
            f"{owner} cannot calibrate noise for {type(inner).__name__}: its sensitivity is unknown "
            "(DP wrappers cannot be nested)"
        )
    return inner


def check_sampling_rate(sampling_rate: object) -> float:
    """A Poisson sampling rate in (0, 1]."""
    rate = check_positive("sampling_rate", sampling_rate)
    if rate > 1:
        raise AggregationError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
    return rate


def sensitivity_of(inner: Strategy, clip_norm: float, num_clients: int) -> float:
    """The inner strategy's sensitivity for this round (checked non-None at construction)."""
    value = inner.sensitivity(clip_norm, num_clients)
    if value is None:  # pragma: no cover - check_inner rules this out
        raise AggregationError(f"{type(inner).__name__} has no known sensitivity")
    return value
