"""The values that strategies take and return.

A strategy sees each client's *delta* (its trained adapter minus the round's global adapter), never
a full adapter, so that FedAvg's output can be added straight onto the global model
(:func:`flb_dapp.aggregation.tensors.apply_delta`) and clipping bounds the size of a client's
change, which is what differential privacy needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flb_dapp.exceptions import AggregationError


@dataclass(frozen=True)
class ClientUpdate:
    """One client's contribution to a round.

    ``tensors`` may be lazy (for instance backed by ``safetensors.safe_open``): strategies read it
    one tensor at a time and never hold more than one client's adapter, or one key across clients,
    at once. ``num_samples`` is self-reported, which is why FedAvg can cap it and the DP and robust
    rules ignore it.
    """

    client: str
    num_samples: int
    tensors: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        if not isinstance(self.client, str) or not self.client:
            raise AggregationError(f"a client update needs a non-empty client id, got {self.client!r}")
        # bool is an int subclass; a True sample count is a bug upstream, not one sample.
        if isinstance(self.num_samples, bool) or not isinstance(self.num_samples, int | np.integer):
            raise AggregationError(
                f"client {self.client}: num_samples must be an integer, got {self.num_samples!r}"
            )
        if self.num_samples < 0:
            raise AggregationError(f"client {self.client}: num_samples must be >= 0, got {self.num_samples}")


@dataclass(frozen=True)
class PrivacyEvent:
    """What one round of server-side DP spent, in the terms a privacy accountant needs.

    ``noise_multiplier`` is the Gaussian noise std divided by the L2 sensitivity of the aggregate.
    ``sampling_rate`` is the probability with which each client took part; it stays 1.0 (no
    amplification) unless the cohort really was Poisson-sampled from a larger population, because
    self-selected participants give no amplification.
    """

    noise_multiplier: float
    num_clients: int
    sampling_rate: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0):
            raise AggregationError(f"noise_multiplier must be finite and >= 0, got {self.noise_multiplier}")
        if not 0 < self.sampling_rate <= 1:
            raise AggregationError(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")
        if self.num_clients < 0:
            raise AggregationError(f"num_clients must be >= 0, got {self.num_clients}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, as stored in round reports and the accountant's state."""
        return {
            "noise_multiplier": float(self.noise_multiplier),
            "num_clients": int(self.num_clients),
            "sampling_rate": float(self.sampling_rate),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyEvent:
        """Inverse of :meth:`to_dict`."""
        return cls(
            noise_multiplier=float(data["noise_multiplier"]),
            num_clients=int(data["num_clients"]),
            sampling_rate=float(data.get("sampling_rate", 1.0)),
        )


@dataclass
class AggregationResult:
    """The outcome of one :meth:`Strategy.aggregate` call.

    Attributes:
        delta: key -> float32 array to add onto the global adapter.
        weights: client -> effective weight in ``delta``; the included clients' weights sum to 1.
            Rules that are not weighted means (median, trimmed mean) report uniform weights over
            the clients that took part.
        excluded: client -> why it did not contribute (not selected by Multi-Krum, zero samples).
        metrics: numbers for the round report (clip norm used, noise std, clipped fraction, ...).
        privacy: what the round spent, for the accountant; ``None`` without DP.
    """

    delta: dict[str, np.ndarray]
    weights: dict[str, float]
    excluded: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    privacy: PrivacyEvent | None = None
