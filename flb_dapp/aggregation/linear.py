"""A linear rule's aggregate, taken apart: each included client's weight and the delta it averages.

FedAvg's output over clients ``S`` is ``sum_{i in S} w_i x_i / sum_{i in S} w_i``, and so is a DP
wrapper's before its noise (with ``x_i`` the clipped delta and ``w_i = 1``). Given the parts, the
aggregate of *any* subset of the clients follows without running the rule again, which is what the
round's contribution scores need (leave-one-out from one running sum, Shapley from every subset).
Robust rules (median, trimmed mean, Multi-Krum) are not linear and have no parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LinearParts:
    """The ingredients of a linear aggregate.

    Attributes:
        weights: client -> its raw (unnormalised) weight ``w_i > 0``: a capped sample count, or 1.
        deltas: client -> the delta the rule averages (clipped under DP), a checked, possibly lazy view.
        excluded: client -> why it carries no weight (as ``AggregationResult.excluded``).
        noise_free: True when the rule's output *is* the weighted mean (no DP noise is added); False
            when the parts are the aggregate before its noise.
    """

    weights: dict[str, float]
    deltas: dict[str, Mapping[str, np.ndarray]]
    excluded: dict[str, str] = field(default_factory=dict)
    noise_free: bool = True
