"""Cumulative-rewards Merkle tree, laid out exactly as OpenZeppelin's ``StandardMerkleTree``.

The contract's ``claim`` checks a proof with OpenZeppelin's ``MerkleProof.verifyCalldata``, and claim
front ends usually build or load the tree with the npm ``@openzeppelin/merkle-tree`` package
(``StandardMerkleTree.of(values, ["address", "uint256"])`` / ``StandardMerkleTree.load(dump)``). This
module builds the very same tree, node for node, so the root the oracle publishes, the proofs in the
round report and the ``standard-v1`` dump all agree with what that package computes:

- leaf = keccak256(keccak256(abi.encode(address, uint256))): the double hash keeps a leaf from ever
  being confused with an inner node (whose preimage is 64 bytes, as is abi.encode's);
- the leaves are sorted by their hash (not by address), so the root depends only on the set of
  (account, amount) pairs, whoever builds it and in whatever order;
- the nodes form a complete binary tree stored as an array of 2n - 1 hashes: the root at index 0,
  the children of node i at 2i + 1 and 2i + 2, and the sorted leaves at the end in reverse order
  (the smallest leaf hash is the last element);
- an inner node hashes its two children in sorted order (OpenZeppelin's ``hashPair``), so a proof
  needs no left/right flags: it is the list of siblings from the leaf up to the root.

A layout that sorts leaves by address or carries an odd node up unchanged also verifies with
``MerkleProof``, but gives another root for three or more leaves, which a front end using the npm
package could then not reproduce.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_hash.auto import keccak
from eth_utils import is_address, to_canonical_address, to_checksum_address

# The root of a tree without leaves (nothing to claim yet). OpenZeppelin's StandardMerkleTree refuses
# to build a tree of 0 leaves ("Expected non-zero number of leaves"), so such a tree has no
# standard-v1 dump; zero is the root no proof can ever reach, which is what the contract needs.
EMPTY_ROOT = b"\x00" * 32

# The ABI types of a leaf's value, as StandardMerkleTree's dump names them.
LEAF_ENCODING = ("address", "uint256")
STANDARD_FORMAT = "standard-v1"


def leaf_hash(account: str, cumulative_amount: int) -> bytes:
    """The leaf the contract recomputes in ``claim``."""
    if cumulative_amount < 0 or cumulative_amount >= 2**256:
        raise ValueError(f"amount out of uint256 range: {cumulative_amount}")
    encoded = b"\x00" * 12 + to_canonical_address(account) + cumulative_amount.to_bytes(32, "big")
    return keccak(keccak(encoded))


def _hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a < b else keccak(b + a)


def _make_tree(leaves: list[bytes]) -> list[bytes]:
    """StandardMerkleTree's array: ``leaves`` (already sorted) at the end in reverse order, then every
    inner node from the last one up to the root."""
    tree: list[bytes] = [b""] * (2 * len(leaves) - 1)
    for i, leaf in enumerate(leaves):
        tree[len(tree) - 1 - i] = leaf
    for i in range(len(tree) - 1 - len(leaves), -1, -1):
        tree[i] = _hash_pair(tree[2 * i + 1], tree[2 * i + 2])
    return tree


def _proof(tree: list[bytes], index: int) -> list[bytes]:
    """The siblings of node ``index`` and of each of its ancestors below the root."""
    proof = []
    while index > 0:
        # Left children have odd indexes: the sibling of 2k + 1 is 2k + 2 and vice versa.
        proof.append(tree[index + 1 if index % 2 else index - 1])
        index = (index - 1) // 2
    return proof


@dataclass(frozen=True)
class RewardsTree:
    """A built tree: the root plus a proof for every account.

    ``nodes`` is StandardMerkleTree's node array (empty for the empty tree) and ``tree_index`` the
    position of each account's leaf in it; both are what ``standard_dump`` writes out.
    """

    root: bytes
    amounts: dict[str, int]  # checksum address -> cumulative amount
    proofs: dict[str, list[bytes]]
    nodes: tuple[bytes, ...] = field(default=(), repr=False)
    tree_index: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def root_hex(self) -> str:
        return "0x" + self.root.hex()

    def proof_hex(self, account: str) -> list[str]:
        return ["0x" + node.hex() for node in self.proofs[to_checksum_address(account)]]

    def standard_dump(self) -> dict[str, Any]:
        """The tree in OpenZeppelin's ``standard-v1`` format, which ``StandardMerkleTree.load`` opens.

        ``{"format": "standard-v1", "leafEncoding": ["address", "uint256"], "tree": [hex node, ...],
        "values": [{"value": [checksum address, decimal string], "treeIndex": k}, ...]}``.
        ``values`` are sorted by address (as 20 bytes), so one allocation always gives the same dump;
        that is also the dump ``StandardMerkleTree.of`` gives when handed the values in that order.
        Amounts are decimal strings because ``JSON.parse`` rounds integers above 2**53.
        Raises ``ValueError`` for the empty tree, which OpenZeppelin cannot represent.
        """
        if not self.amounts:
            raise ValueError("a tree without leaves has no standard-v1 dump (OpenZeppelin needs >= 1 leaf)")
        accounts = sorted(self.amounts, key=to_canonical_address)
        return {
            "format": STANDARD_FORMAT,
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self.nodes],
            "values": [
                {"value": [account, str(self.amounts[account])], "treeIndex": self.tree_index[account]}
                for account in accounts
            ],
        }

    @classmethod
    def from_standard_dump(cls, data: Mapping[str, Any]) -> RewardsTree:
        """Open a ``standard-v1`` dump (ours or the npm package's), checking it as
        ``StandardMerkleTree.load`` followed by ``validate()`` would, and more strictly: the node
        array must be exactly the one ``build_rewards_tree`` makes from the dump's values (so a dump
        built with ``sortLeaves: false`` or with a tampered node is refused), every value must sit at
        its own leaf, and an account may appear only once. Raises ``ValueError`` otherwise."""
        if data.get("format") != STANDARD_FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}, expected {STANDARD_FORMAT!r}")
        if list(data.get("leafEncoding", ())) != list(LEAF_ENCODING):
            raise ValueError(f"leafEncoding must be {list(LEAF_ENCODING)}, got {data.get('leafEncoding')!r}")
        amounts: dict[str, int] = {}
        positions: dict[str, int] = {}
        for entry in data.get("values", ()):
            try:
                account, amount = entry["value"]
                tree_index = int(entry["treeIndex"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"malformed value entry {entry!r}") from exc
            if not is_address(account):
                raise ValueError(f"not an address: {account!r}")
            checksum = str(to_checksum_address(account))
            if checksum in amounts:
                raise ValueError(f"{checksum} appears twice in the dump")
            # A decimal string, as dumps carry amounts, or a JSON integer; never a float or a bool,
            # which would have lost or faked digits before they got here.
            exact = (isinstance(amount, str) and amount.isascii() and amount.isdecimal()) or (
                isinstance(amount, int) and not isinstance(amount, bool)
            )
            if not exact:
                raise ValueError(f"amount of {checksum} is not a decimal string: {amount!r}")
            amounts[checksum] = int(amount)
            positions[checksum] = tree_index
        if not amounts:
            raise ValueError("a standard-v1 dump needs at least one value (OpenZeppelin refuses empty trees)")
        if any(v == 0 for v in amounts.values()):
            raise ValueError("a leaf with amount 0: build_rewards_tree leaves such accounts out")
        tree = build_rewards_tree(amounts)
        nodes = [bytes.fromhex(str(node).removeprefix("0x")) for node in data.get("tree", ())]
        if tuple(nodes) != tree.nodes:
            raise ValueError("the dump's nodes are not the standard tree of its values")
        if positions != tree.tree_index:
            raise ValueError("a value's treeIndex does not point at its own leaf")
        return tree


def build_rewards_tree(cumulative: Mapping[str, int]) -> RewardsTree:
    """Build the tree of cumulative rewards. Accounts with 0 are left out (nothing to claim)."""
    amounts: dict[str, int] = {
        str(to_checksum_address(a)): int(v) for a, v in cumulative.items() if int(v) > 0
    }
    if len(amounts) < sum(1 for v in cumulative.values() if int(v) > 0):
        # Two spellings of one address (checksum and lower case) would silently drop an amount.
        raise ValueError("the same account appears twice in the allocation")
    if not amounts:
        return RewardsTree(EMPTY_ROOT, {}, {})
    # Sort by leaf hash, as StandardMerkleTree.of does by default (sortLeaves: true). Leaf hashes of
    # distinct accounts differ, so the order is total and the tie-breaker never matters.
    leaves = sorted((leaf_hash(a, v), a) for a, v in amounts.items())
    nodes = _make_tree([leaf for leaf, _ in leaves])
    tree_index = {account: len(nodes) - 1 - i for i, (_, account) in enumerate(leaves)}
    proofs = {account: _proof(nodes, index) for account, index in tree_index.items()}
    return RewardsTree(nodes[0], amounts, proofs, tuple(nodes), tree_index)


def verify_proof(root: bytes, account: str, cumulative_amount: int, proof: list[bytes]) -> bool:
    """What the contract checks, in Python."""
    node = leaf_hash(account, cumulative_amount)
    for sibling in proof:
        node = _hash_pair(node, sibling)
    return node == root
