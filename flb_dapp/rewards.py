"""Contribution scores -> reward amounts -> the cumulative Merkle tree.

Amounts are integers in the token's smallest unit. A round never allocates more than its budget:
each share is rounded down, and what rounding leaves over stays in the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_utils import to_checksum_address

from flb_dapp.merkle import RewardsTree, build_rewards_tree

#: Contribution rules a round may use (``rounds/contributions.py``); the default is in RoundRules.
SCORING_RULES = ("shapley", "leave-one-out", "prototype")


def split_budget(scores: Mapping[str, float], budget: int) -> dict[str, int]:
    """Share ``budget`` in proportion to the non-negative ``scores``; nothing if all are zero."""
    positive = {c: float(s) for c, s in scores.items() if s > 0}
    total = sum(positive.values())
    if budget <= 0 or total <= 0:
        return {c: 0 for c in scores}
    # NOTE: exact integer arithmetic on scaled scores, so every machine computes the same amounts.
    scale = 10**12
    scaled = {c: int(s / total * scale) for c, s in positive.items()}
    denominator = sum(scaled.values()) or 1
    return {c: (budget * scaled.get(c, 0)) // denominator for c in scores}


def prototype_scores(
    uploads: Mapping[str, int], weight_bytes: int, samples: Mapping[str, int], relative_improvement: float
) -> dict[str, float]:
    """The earlier prototype's formula, corrected: (uploads x weight size + samples) x
    max(0, relative improvement). The prototype paid even when the model got worse."""
    factor = max(0.0, relative_improvement)
    return {c: (uploads[c] * weight_bytes + samples[c]) * factor for c in uploads}


@dataclass(frozen=True)
class RewardsOutcome:
    """This round's amounts, everyone's cumulative amounts, and the tree the contract checks."""

    round_rewards: dict[str, int]
    cumulative: dict[str, int]
    tree: RewardsTree

    @property
    def total(self) -> int:
        return sum(self.round_rewards.values())


def allocate(
    scores: Mapping[str, float], budget: int, previous_cumulative: Mapping[str, int]
) -> RewardsOutcome:
    """Turn this round's scores into amounts and add them to the previous cumulative totals."""
    round_rewards: dict[str, int] = {
        str(to_checksum_address(c)): a for c, a in split_budget(scores, budget).items()
    }
    cumulative: dict[str, int] = {str(to_checksum_address(c)): int(a) for c, a in previous_cumulative.items()}
    for client, amount in round_rewards.items():
        cumulative[client] = cumulative.get(client, 0) + amount
    return RewardsOutcome(round_rewards, cumulative, build_rewards_tree(cumulative))
