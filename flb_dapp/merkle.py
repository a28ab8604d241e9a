"""Cumulative-rewards Merkle tree, byte-compatible with OpenZeppelin's ``MerkleProof``.

Leaf = keccak256(keccak256(abi.encode(address, uint256))) (the double hash keeps a leaf from ever
being confused with an inner node); inner nodes hash their two children in sorted order, so a
proof needs no left/right flags. Leaves are sorted by address so the same allocation always gives
the same root, whoever builds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

EMPTY_ROOT = b"\x00" * 32


def leaf_hash(account: str, cumulative_amount: int) -> bytes:
    """The leaf the contract recomputes in ``claim``."""
    if cumulative_amount < 0 or cumulative_amount >= 2**256:
        raise ValueError(f"amount out of uint256 range: {cumulative_amount}")
    encoded = b"\x00" * 12 + to_canonical_address(account) + cumulative_amount.to_bytes(32, "big")
    return keccak(keccak(encoded))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


@dataclass(frozen=True)
class RewardsTree:
    """A built tree: the root plus a proof for every account."""

    root: bytes
    amounts: dict[str, int]  # checksum address -> cumulative amount
    proofs: dict[str, list[bytes]]

    @property
    def root_hex(self) -> str:
        return "0x" + self.root.hex()

    def proof_hex(self, account: str) -> list[str]:
        return ["0x" + node.hex() for node in self.proofs[to_checksum_address(account)]]


def build_rewards_tree(cumulative: Mapping[str, int]) -> RewardsTree:
    """Build the tree of cumulative rewards. Accounts with 0 are left out (nothing to claim)."""
    amounts: dict[str, int] = {
        str(to_checksum_address(a)): int(v) for a, v in cumulative.items() if int(v) > 0
    }
    accounts = sorted(amounts, key=lambda a: to_canonical_address(a))
    if not accounts:
        return RewardsTree(EMPTY_ROOT, {}, {})
    level = [leaf_hash(a, amounts[a]) for a in accounts]
    positions = list(range(len(accounts)))
    proofs: dict[str, list[bytes]] = {a: [] for a in accounts}
    while len(level) > 1:
        for i, account in enumerate(accounts):
            pos = positions[i]
            sibling = pos ^ 1
            if sibling < len(level):
                proofs[account].append(level[sibling])
            positions[i] = pos // 2
        # NOTE: an odd node out is carried up unchanged, as MerkleProof's sorted-pair scheme allows.
        level = [
            _hash_pair(level[j], level[j + 1]) if j + 1 < len(level) else level[j]
            for j in range(0, len(level), 2)
        ]
    return RewardsTree(level[0], amounts, proofs)


def verify_proof(root: bytes, account: str, cumulative_amount: int, proof: list[bytes]) -> bool:
    """What the contract checks, in Python."""
    node = leaf_hash(account, cumulative_amount)
    for sibling in proof:
        node = _hash_pair(node, sibling)
    return node == root
