"""The ``Strategy`` interface: validate the round's updates, then combine them.

``aggregate`` is a template method. It checks what every rule needs (at least one update, distinct
clients, the same keys everywhere), puts the updates in a canonical order (by client id, so the
result never depends on the order in which updates arrived), wraps each client's tensors so that
every read is checked against the common layout, and hands over to the rule's ``_combine``.

Shapes and values are checked as tensors are read rather than up front: an up-front pass would read
every lazy, file-backed update one extra time.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from flb_dapp.aggregation.linear import LinearParts
from flb_dapp.aggregation.types import AggregationResult, ClientUpdate
from flb_dapp.exceptions import AggregationError


class VerifiedTensors(Mapping[str, np.ndarray]):
    """Marker base: a view whose reads are already checked, so nested strategies do not re-check."""


class CheckedTensors(VerifiedTensors):
    """A read-through view of one client's tensors that checks each tensor as it is read.

    The first tensor read under a key (from any client) fixes that key's shape for the whole call;
    every later read must match it. Values must be floating point and finite: one NaN would turn
    every mean into NaN, and the error names the client so the caller can drop its update.
    """

    def __init__(
        self, base: Mapping[str, np.ndarray], client: str, shapes: dict[str, tuple[tuple[int, ...], str]]
    ):
        self._base = base
        self._client = client
        self._shapes = shapes  # shared by all clients of one aggregate() call: key -> (shape, client)

    def __getitem__(self, key: str) -> np.ndarray:
        array = np.asarray(self._base[key])
        if not np.issubdtype(array.dtype, np.floating):
            raise AggregationError(
                f"client {self._client}: tensor {key!r} has dtype {array.dtype}, not floating"
            )
        expected = self._shapes.setdefault(key, (array.shape, self._client))
        if array.shape != expected[0]:
            raise AggregationError(
                f"client {self._client}: tensor {key!r} has shape {array.shape}, "
                f"but client {expected[1]} sent {expected[0]}"
            )
        if array.dtype != np.float32:
            array = array.astype(np.float32)
        flat = array.ravel()
        # One BLAS pass: NaN and inf propagate into the dot product. A non-finite dot can also be
        # the overflow of huge finite values, so only the exact (slower) test decides.
        if not math.isfinite(float(np.dot(flat, flat))) and not np.isfinite(array).all():
            raise AggregationError(
                f"client {self._client}: tensor {key!r} contains NaN or infinite values (as float32)"
            )
        return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def validate_updates(updates: Sequence[ClientUpdate]) -> list[ClientUpdate]:
    """Check the common layout; return the updates sorted by client with checked tensor views."""
    if len(updates) == 0:
        raise AggregationError("cannot aggregate an empty list of updates")
    ordered = sorted(updates, key=lambda u: u.client)
    reference = ordered[0]
    reference_keys = set(reference.tensors.keys())
    if not reference_keys:
        raise AggregationError(f"client {reference.client} sent an update with no tensors")
    shapes: dict[str, tuple[tuple[int, ...], str]] = {}
    checked: list[ClientUpdate] = []
    previous: str | None = None
    for update in ordered:
        if update.client == previous:
            raise AggregationError(f"client {update.client} sent more than one update")
        previous = update.client
        keys = set(update.tensors.keys())
        if keys != reference_keys:
            missing = sorted(reference_keys - keys)
            if missing:
                raise AggregationError(
                    f"client {update.client}: key {missing[0]!r} is missing "
                    f"(client {reference.client} has it; {len(missing)} missing in all)"
                )
            extra = sorted(keys - reference_keys)
            raise AggregationError(
                f"client {update.client}: unexpected key {extra[0]!r} "
                f"(client {reference.client} has no such key; {len(extra)} unexpected in all)"
            )
        tensors = update.tensors
        if not isinstance(tensors, VerifiedTensors):
            tensors = CheckedTensors(tensors, update.client, shapes)
        checked.append(ClientUpdate(update.client, update.num_samples, tensors))
    return checked


def round_rng(seed: int | None, round: int) -> np.random.Generator:
    """The generator for one round: derived from ``(seed, round)``, or fresh OS entropy without a seed.

    Deriving per round (rather than carrying one generator along) lets a verifier replay round ``r``
    alone, and keeps a crashed-and-restarted oracle on the same draws.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(np.random.SeedSequence([seed, round]))


def check_seed(seed: int | None) -> None:
    """Constructors' shared check: a seed is a non-negative integer or ``None``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise AggregationError(f"seed must be a non-negative integer or None, got {seed!r}")


class Strategy(ABC):
    """A rule that combines the round's client deltas into one delta for the global adapter.

    Subclasses implement :meth:`_combine` (given validated, client-sorted updates) and
    :meth:`describe`. Strategies whose output has a known L2 sensitivity to one client, once every
    delta is clipped, say so in :meth:`sensitivity`; the DP wrappers calibrate their noise with it.
    """

    #: Short name used by the registry and in round reports.
    name: ClassVar[str]

    def aggregate(self, updates: Sequence[ClientUpdate], round: int = 0) -> AggregationResult:
        """Validate the updates' common layout, then combine them. Raises ``AggregationError``."""
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise AggregationError(f"round must be a non-negative integer, got {round!r}")
        return self._combine(validate_updates(updates), round)

    @abstractmethod
    def _combine(self, updates: list[ClientUpdate], round: int) -> AggregationResult:
        """Combine updates already validated and sorted by client."""

    def linear_parts(self, updates: Sequence[ClientUpdate], round: int = 0) -> LinearParts | None:
        """The per-client weights and (clipped) deltas whose weighted mean is this rule's output
        before any noise, or ``None`` for a rule that is not a weighted mean (robust rules).

        The same checks as :meth:`aggregate` apply; nothing is aggregated and no state changes, so a
        caller can form the aggregate of any subset of ``updates`` from the parts.
        """
        if isinstance(round, bool) or not isinstance(round, int) or round < 0:
            raise AggregationError(f"round must be a non-negative integer, got {round!r}")
        return self._linear_parts(validate_updates(updates), round)

    def _linear_parts(self, updates: list[ClientUpdate], round: int) -> LinearParts | None:
        """Linear rules override this; updates are validated and sorted by client."""
        return None

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name and parameters, JSON-able, for the round report. Never includes a DP seed."""

    def sensitivity(self, clip_norm: float, num_clients: int) -> float | None:
        """L2 sensitivity of the output to adding or removing one client whose delta norm is at most
        ``clip_norm``, given ``num_clients`` uniformly weighted clients; ``None`` if unknown."""
        return None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.describe().items() if k != "name")
        return f"{type(self).__name__}({params})"


def selection_weights(updates: Sequence[ClientUpdate], counts: np.ndarray) -> dict[str, float]:
    """Weights of a coordinate-wise rule: each client's share of the values the rule kept, so a
    client whose values are always trimmed away shows weight 0 in the round report."""
    total = float(counts.sum())
    if total <= 0:
        return uniform_weights(updates)
    return {u.client: float(c) / total for u, c in zip(updates, counts, strict=True)}


def uniform_weights(updates: Sequence[ClientUpdate]) -> dict[str, float]:
    """Equal weights over the given clients, for rules that are not weighted means."""
    return {u.client: 1.0 / len(updates) for u in updates}


def coordinatewise_sensitivity(clip_norm: float, num_clients: int) -> float:
    """A valid, loose sensitivity bound for rules whose output lies coordinate-wise between the
    clients' minimum and maximum (median, trimmed mean).

    Such an output has squared norm at most ``sum_j max_i x_ij^2 <= sum_i |x_i|^2 <= n C^2``, so two
    neighbouring outputs differ by at most ``2 sqrt(n) C``. Tighter bounds exist only under
    assumptions on the data; this one holds always, so noise calibrated to it is honest (and large).
    """
    return 2.0 * math.sqrt(num_clients) * clip_norm
