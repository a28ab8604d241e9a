"""The rewards tree is OpenZeppelin's StandardMerkleTree, node for node.

The cross-check runs the npm package itself (``@openzeppelin/merkle-tree``, pinned in package.json)
under node through tests/merkle_standard.mjs: same root from the same values, our ``standard-v1``
dump loads and validates there, and our proofs are the package's proofs. Without node or the
package these tests fail rather than skip: claim front ends rely on exactly this compatibility.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_utils import to_canonical_address, to_checksum_address

from flb_dapp.merkle import EMPTY_ROOT, RewardsTree, build_rewards_tree, leaf_hash, verify_proof

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "merkle_standard.mjs"
SIZES = (1, 2, 3, 7, 100)


def address(i: int) -> str:
    """A fixed, well-spread checksum address (so leaf order differs from address order)."""
    return str(to_checksum_address(keccak(f"account {i}".encode())[-20:]))


def allocation(n: int) -> dict[str, int]:
    # Above 2**53: a JavaScript number would round these, so the dump must carry exact strings.
    return {address(i): 10**24 + i for i in range(n)}


def case_of(tree: RewardsTree) -> dict[str, Any]:
    """The node script's input for one tree: values in dump order, each with its proof."""
    dump = tree.standard_dump()
    values = [entry["value"] for entry in dump["values"]]
    return {
        "values": values,
        "dump": dump,
        "root": tree.root_hex,
        "proofs": [tree.proof_hex(a) for a, _ in values],
    }


def run_openzeppelin(cases: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the StandardMerkleTree cross-check needs it (Node 20, see README)")
    result = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps({"cases": cases}),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"tests/merkle_standard.mjs failed (`npm ci` installs the package):\n{result.stderr}")
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.fixture(scope="module")
def trees() -> list[RewardsTree]:
    return [build_rewards_tree(allocation(n)) for n in SIZES]


@pytest.fixture(scope="module")
def openzeppelin(trees: list[RewardsTree]) -> dict[str, Any]:
    return run_openzeppelin([case_of(tree) for tree in trees])


def test_the_cross_check_runs_the_pinned_package(openzeppelin: dict[str, Any]) -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["@openzeppelin/merkle-tree"]
    assert openzeppelin["version"] == pinned == "1.0.8"


@pytest.mark.parametrize("case", range(len(SIZES)), ids=[f"{n}-leaves" for n in SIZES])
def test_openzeppelin_builds_loads_and_proves_the_same_tree(
    trees: list[RewardsTree], openzeppelin: dict[str, Any], case: int
) -> None:
    tree, oz = trees[case], openzeppelin["cases"][case]
    dump = tree.standard_dump()
    assert oz["ofRoot"] == tree.root_hex
    assert oz["loadedRoot"] == tree.root_hex
    # Handed the values in our order, StandardMerkleTree.of dumps exactly what we dump.
    assert oz["ofDump"] == dump
    assert oz["verified"] == [True] * SIZES[case]
    ours = [tree.proof_hex(account) for account, _ in (entry["value"] for entry in dump["values"])]
    assert oz["ofProofs"] == ours
    assert oz["loadedProofs"] == ours


def test_openzeppelin_refuses_a_wrong_amount(trees: list[RewardsTree]) -> None:
    """The cross-check can fail: there, our proof does not verify a value with another amount."""
    case = case_of(trees[2])
    account, amount = case["values"][0]
    case["values"][0] = [account, str(int(amount) + 1)]
    oz = run_openzeppelin([case])["cases"][0]
    assert oz["verified"] == [False, True, True]
    assert oz["ofRoot"] != trees[2].root_hex
    assert oz["loadedProofs"][0] is None  # the loaded (true) tree has no leaf for the forged value
    assert oz["loadedProofs"][1:] == case["proofs"][1:]


def test_a_known_root() -> None:
    # Computed by @openzeppelin/merkle-tree 1.0.8, StandardMerkleTree.of(values, ["address", "uint256"])
    # with values = [[address(i), str(10**24 + i)] for i in range(7)]: a check that needs no node.
    # The earlier layout (leaves sorted by address, an odd node carried up) gave 0x602aa462...7b3c.
    assert build_rewards_tree(allocation(7)).root_hex == (
        "0x0345607460a1025d307390397f5935f983065b1093763e2830a7d735742e6bce"
    )


def test_layout_is_the_standard_array() -> None:
    """Leaves sorted by hash at the end of the array in reverse order, node i over 2i+1 and 2i+2."""
    amounts = allocation(3)
    tree = build_rewards_tree(amounts)
    low, mid, high = sorted(leaf_hash(a, v) for a, v in amounts.items())
    n1 = _pair(mid, low)
    assert tree.nodes == (_pair(n1, high), n1, high, mid, low)
    by_leaf = {leaf_hash(a, v): a for a, v in amounts.items()}
    assert {by_leaf[low]: 4, by_leaf[mid]: 3, by_leaf[high]: 2} == tree.tree_index
    assert tree.proofs[by_leaf[low]] == [mid, high]
    assert tree.proofs[by_leaf[mid]] == [low, high]
    assert tree.proofs[by_leaf[high]] == [n1]


def _pair(a: bytes, b: bytes) -> bytes:
    return keccak(min(a, b) + max(a, b))


@pytest.mark.parametrize("n", SIZES)
def test_every_proof_verifies_and_has_its_depth(n: int) -> None:
    tree = build_rewards_tree(allocation(n))
    assert len(tree.nodes) == 2 * n - 1 and tree.root == tree.nodes[0]
    for account, amount in tree.amounts.items():
        proof = tree.proofs[account]
        assert verify_proof(tree.root, account, amount, proof)
        assert not verify_proof(tree.root, account, amount + 1, proof)
        # A node at index k of a complete binary tree sits at depth floor(log2(k + 1)).
        assert len(proof) == (tree.tree_index[account] + 1).bit_length() - 1


def test_input_order_and_address_spelling_do_not_change_the_tree() -> None:
    amounts = allocation(7)
    reordered = {a.lower(): v for a, v in reversed(list(amounts.items()))}
    assert build_rewards_tree(reordered) == build_rewards_tree(amounts)


def test_zero_amounts_are_left_out() -> None:
    amounts = allocation(3)
    with_zero = {**amounts, address(99): 0}
    assert build_rewards_tree(with_zero) == build_rewards_tree(amounts)


def test_one_account_spelled_twice_is_refused() -> None:
    a = address(0)
    with pytest.raises(ValueError, match="appears twice"):
        build_rewards_tree({a: 1, a.lower(): 2})


def test_the_empty_tree_has_the_zero_root_and_no_dump() -> None:
    tree = build_rewards_tree({address(0): 0})
    assert (tree.root, tree.root_hex, tree.amounts, tree.proofs, tree.nodes) == (
        EMPTY_ROOT,
        "0x" + "00" * 32,
        {},
        {},
        (),
    )
    with pytest.raises(ValueError, match="OpenZeppelin needs >= 1 leaf"):
        tree.standard_dump()


def test_the_dump_is_exact_and_deterministic() -> None:
    tree = build_rewards_tree(allocation(7))
    dump = tree.standard_dump()
    assert list(dump) == ["format", "leafEncoding", "tree", "values"]
    assert (dump["format"], dump["leafEncoding"]) == ("standard-v1", ["address", "uint256"])
    assert dump["tree"] == ["0x" + node.hex() for node in tree.nodes]
    accounts = [entry["value"][0] for entry in dump["values"]]
    assert accounts == sorted(tree.amounts, key=to_canonical_address)
    for entry in dump["values"]:
        account, amount = entry["value"]
        assert amount == str(tree.amounts[account]) and isinstance(amount, str)
        assert dump["tree"][entry["treeIndex"]] == "0x" + leaf_hash(account, int(amount)).hex()
    assert build_rewards_tree(dict(reversed(list(tree.amounts.items())))).standard_dump() == dump


@pytest.mark.parametrize("n", SIZES)
def test_a_dump_loads_back_into_the_same_tree(n: int) -> None:
    tree = build_rewards_tree(allocation(n))
    assert RewardsTree.from_standard_dump(json.loads(json.dumps(tree.standard_dump()))) == tree


def _tampered(change: str) -> dict[str, Any]:
    dump = build_rewards_tree(allocation(7)).standard_dump()
    if change == "format":
        dump["format"] = "simple-v1"
    elif change == "encoding":
        dump["leafEncoding"] = ["address", "uint128"]
    elif change == "node":
        dump["tree"][1] = "0x" + "ab" * 32
    elif change == "index":
        dump["values"][0]["treeIndex"], dump["values"][1]["treeIndex"] = (
            dump["values"][1]["treeIndex"],
            dump["values"][0]["treeIndex"],
        )
    elif change == "amount":
        dump["values"][0]["value"][1] = str(int(dump["values"][0]["value"][1]) + 1)
    elif change == "duplicate":
        dump["values"].append(copy.deepcopy(dump["values"][0]))
    elif change == "address":
        dump["values"][0]["value"][0] = "0x1234"
    elif change == "entry":
        del dump["values"][0]["treeIndex"]
    elif change == "float":
        dump["values"][0]["value"][1] = float(dump["values"][0]["value"][1])
    elif change == "sign":
        dump["values"][0]["value"][1] = "-" + dump["values"][0]["value"][1]
    elif change == "empty":
        dump["tree"], dump["values"] = [], []
    return dump


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("format", "unknown format 'simple-v1'"),
        ("encoding", "leafEncoding must be"),
        ("node", "not the standard tree"),
        ("index", "does not point at its own leaf"),
        ("amount", "not the standard tree"),
        ("duplicate", "appears twice in the dump"),
        ("address", "not an address"),
        ("entry", "malformed value entry"),
        ("float", "not a decimal string"),
        ("sign", "not a decimal string"),
        ("empty", "at least one value"),
    ],
)
def test_a_wrong_dump_is_refused(change: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RewardsTree.from_standard_dump(_tampered(change))
