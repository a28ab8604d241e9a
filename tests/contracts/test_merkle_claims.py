"""Every proof of a StandardMerkleTree-shaped rewards tree pays on chain, within the claim gas target.

tests/test_merkle_standard.py shows the tree is OpenZeppelin's; this shows ``claim`` (which checks
with ``MerkleProof.verifyCalldata``) accepts its proofs at every depth, in trees of sizes where the
layout matters (3+ leaves), and that a leaf's proof pays only that leaf.
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from flb_dapp.merkle import build_rewards_tree
from tests.contracts.conftest import DURATION, commitment
from tests.contracts.test_coordinator import finalize

# bench/gas.py's target for a claim; it must hold for the deepest proof too (7 nodes for 100 leaves).
CLAIM_GAS_TARGET = 90_000


def filler(i: int) -> str:
    """An address nobody holds a key for: a leaf that fills the tree but is never claimed."""
    return str(to_checksum_address(keccak(f"filler {i}".encode())[-20:]))


@pytest.mark.parametrize("size", [3, 7, 100])
def test_every_claimant_of_a_standard_tree_is_paid(
    coordinator: Any, accounts: Any, oracle: Any, token: Any, chain: Any, size: int
) -> None:
    claimants = [accounts[i] for i in range(2, 9)][: min(size, 7)]
    # Registered, as real claimants are: registration pre-fills the claimed-amount slot, which the
    # gas target counts on (a first claim by a stranger pays 15,000 more to fill it).
    for i, client in enumerate(claimants):
        coordinator.register(commitment(f"claimant {i}"), sender=client)
    # Above 2**53 and all different, so a proof for one amount cannot pass for another.
    cumulative = {c.address: 10**20 + i for i, c in enumerate(claimants)}
    cumulative |= {filler(i): 10**18 + i for i in range(size - len(claimants))}
    tree = build_rewards_tree(cumulative)
    assert len(tree.amounts) == size
    total = sum(cumulative.values())
    chain.mine(deltatime=DURATION)  # nobody committed: round 1 is due once its commit phase ends
    finalize(coordinator, oracle, 1, tree.root, total)

    depths = set()
    for client in claimants:
        amount, proof = tree.amounts[client.address], tree.proofs[client.address]
        depths.add(len(proof))
        # Someone else's proof, or this proof for another amount, pays nothing.
        other = next(c for c in claimants if c != client) if len(claimants) > 1 else None
        if other is not None:
            with ape.reverts(coordinator.CoordinatorInvalidProof, client=other, cumulativeAmount=amount):
                coordinator.claim(amount, proof, sender=other)
        with ape.reverts(coordinator.CoordinatorInvalidProof, client=client, cumulativeAmount=amount + 1):
            coordinator.claim(amount + 1, proof, sender=client)
        receipt = coordinator.claim(amount, proof, sender=client)
        assert receipt.events.filter(coordinator.RewardClaimed) == [
            coordinator.RewardClaimed(client=client, amount=amount, cumulativeAmount=amount)
        ]
        assert token.balanceOf(client) == amount
        assert receipt.gas_used <= CLAIM_GAS_TARGET, f"{receipt.gas_used} gas for a {len(proof)}-node proof"
    claimed = sum(tree.amounts[c.address] for c in claimants)
    assert coordinator.rewardTotals()[1:] == (total, claimed)
    # A complete binary tree of n leaves puts leaves at depths floor(log2 n) and ceil(log2 n) only.
    assert depths <= {(size - 1).bit_length() - 1, (size - 1).bit_length()}
