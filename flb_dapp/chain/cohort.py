"""The cohort rule off chain: the same seeded permutation as ``contracts/CohortSampling.sol``, so
anyone can list a round's members from its ``CohortDrawn`` record and the registration order.

A round's cohort is ``size`` of the ``population`` clients registered when it opened: registration
index ``i`` is a member when a 4-round Feistel network on ``2 * half`` bits, cycle-walked into
``[0, population)``, sends it below ``size``. ``size == 0`` means the round has no cohort: every
registered client may train.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import keccak

FEISTEL_ROUNDS = 4


@dataclass(frozen=True)
class Cohort:
    """One round's cohort draw as the contract records it (``RoundView`` / ``CohortDrawn``)."""

    round: int
    seed: int  # the 192-bit seed the contract stored; 0 without a cohort
    size: int  # 0: no cohort, every registered client may train
    population: int  # registration indices below this were eligible

    @property
    def sampled(self) -> bool:
        return self.size != 0

    @property
    def seed_hex(self) -> str:
        return "0x" + self.seed.to_bytes(32, "big").hex()

    def includes(self, registration_index: int) -> bool:
        """Whether the client registered ``registration_index``-th is a member (True without a cohort)."""
        if not self.sampled:
            return True
        return is_member(self.seed, registration_index, self.size, self.population)

    def members(self, registration_order: Sequence[str]) -> list[str]:
        """The members among clients listed in registration order (all of them without a cohort)."""
        return [c for i, c in enumerate(registration_order) if self.includes(i)]


def half_bits(population: int) -> int:
    """The smallest ``half >= 1`` with ``4 ** half >= population``."""
    half = 1
    while (1 << (2 * half)) < population:
        half += 1
    return half


def _round_function(seed: int, round_index: int, right: int) -> int:
    word = (round_index << 64) | right
    return int.from_bytes(keccak(seed.to_bytes(32, "big") + word.to_bytes(32, "big")), "big")


def _encrypt(seed: int, x: int, half: int) -> int:
    mask = (1 << half) - 1
    left, right = x >> half, x & mask
    for r in range(FEISTEL_ROUNDS):
        left, right = right, left ^ (_round_function(seed, r, right) & mask)
    return (left << half) | right


def position(seed: int, index: int, population: int) -> int:
    """Where ``index`` lands in the seeded permutation of ``[0, population)``."""
    if not 0 <= index < population:
        raise ValueError(f"index {index} is outside [0, {population})")
    half = half_bits(population)
    x = _encrypt(seed, index, half)
    while x >= population:  # cycle-walking: ends at the latest when the cycle returns to ``index``
        x = _encrypt(seed, x, half)
    return x


def is_member(seed: int, index: int, size: int, population: int) -> bool:
    """``CohortSampling.isMember``: registration index ``index`` is among the ``size`` drawn."""
    if index < 0 or index >= population:
        return False
    if size >= population:
        return True
    return position(seed, index, population) < size


def member_indices(seed: int, size: int, population: int) -> list[int]:
    """The registration indices of a cohort, ascending (exactly ``min(size, population)`` of them)."""
    return [i for i in range(population) if is_member(seed, i, size, population)]
