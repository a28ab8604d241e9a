"""The chain's side of the DP noise binding (:mod:`flb_dapp.rounds.noise`): the finalizer's
commitment, made on the settlement before the round's commit phase ends, and the first block at
or after that deadline, whose hash is mixed into the noise."""

from __future__ import annotations

from typing import Any

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.settlement import Settlement
from flb_dapp.chain.types import hex_text
from flb_dapp.rounds.noise import NoiseBinding, noise_commitment, round_secret

ZERO = b"\x00" * 32


def first_block_at(timestamp: int) -> tuple[int, str] | None:
    """(number, 0x-hash) of the first mined block with a timestamp at or after ``timestamp``;
    None while every block is older."""
    from ape import chain

    head = chain.blocks.head
    if int(head.timestamp) < timestamp:
        return None
    low, high = 0, int(head.number)
    while low < high:  # timestamps never decrease along the chain
        middle = (low + high) // 2
        if int(chain.blocks[middle].timestamp) >= timestamp:
            high = middle
        else:
            low = middle + 1
    return low, hex_text(chain.blocks[low].hash)


def read_noise_binding(
    coordinator: Coordinator, settlement: Settlement, round_number: int
) -> NoiseBinding | None:
    """The round's binding; None without a commitment, or before a block at the deadline exists."""
    commitment = settlement.noise_commitment(round_number)
    if commitment == ZERO:
        return None
    found = first_block_at(coordinator.round(round_number).deadline)
    if found is None:
        return None
    return NoiseBinding(hex_text(commitment), found[0], found[1])


def commit_round_noise(settlement: Settlement, account: Any, round_number: int, dp_seed: int) -> Any:
    """Commit to ``round_number``'s noise secret (the open round's, before its commit phase ends)."""
    return settlement.commit_noise(
        account, round_number, noise_commitment(round_secret(dp_seed, round_number))
    )
