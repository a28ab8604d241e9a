"""What the settlement tests share: the rules they deploy with, a settled system (coordinator,
settlement, a bonded finalizer, three bonded verifiers, a funded challenger, three registered
clients), round results with their rewards trees, and the off-chain result hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak

from flb_dapp.merkle import RewardsTree, build_rewards_tree
from tests.contracts.conftest import deploy_coordinator, raw_cid
from tests.contracts.test_coordinator import submit_all

E = 10**18
FINALIZER_BOND = 2_000 * E
VERIFIER_BOND = 1_000 * E + 1  # odd amounts, so the slash split has to round
CHALLENGE_BOND = 500 * E + 3
WINDOW = 1_800
RESOLUTION = 3_600
EXIT_DELAY = 7_200
QUORUM = 2
SHARE_BPS = 3_333
PARAMETERS = (
    FINALIZER_BOND,
    VERIFIER_BOND,
    CHALLENGE_BOND,
    WINDOW,
    RESOLUTION,
    EXIT_DELAY,
    QUORUM,
    SHARE_BPS,
)
ZERO = b"\x00" * 32
RESULT_TYPE = "(bytes,bytes,bytes32,uint256,uint32,uint64)"
PART_GLOBAL_MODEL, PART_REPORT, PART_REWARDS, PART_METRICS = 1, 2, 4, 8


@dataclass
class System:
    coordinator: Any
    settlement: Any
    token: Any
    owner: Any
    finalizer: Any
    verifiers: list[Any]
    clients: list[Any]
    challenger: Any


@dataclass
class Result:
    """A round result as the contract takes it, with its rewards tree."""

    fields: tuple[bytes, bytes, bytes, int, int, int]
    tree: RewardsTree


def make_result(round_number: int, cumulative: dict[str, int], rewards: int, tag: str = "honest") -> Result:
    tree = build_rewards_tree(cumulative)
    fields = (
        raw_cid(f"global {round_number} {tag}".encode()),
        raw_cid(f"report {round_number} {tag}".encode(), codec=0x70),
        tree.root,
        rewards,
        500_000,
        0,
    )
    return Result(fields, tree)


def hash_fields(round_number: int, parent: bytes, fields: tuple[Any, ...]) -> bytes:
    """``keccak256(abi.encode(round, parentHash, result))``, computed off chain."""
    return keccak(abi_encode(["uint256", "bytes32", RESULT_TYPE], [round_number, parent, fields]))


def hash_of(round_number: int, parent: bytes, result: Result) -> bytes:
    return hash_fields(round_number, parent, result.fields)


def struct_tuple(value: Any) -> tuple[Any, ...]:
    """A decoded ``RoundResult`` (Ape gives a struct) as the tuple the tests build."""
    items = value.values() if hasattr(value, "values") else value
    return tuple(bytes(v) if isinstance(v, bytes | bytearray) else v for v in items)


def role(contract: Any, name: str) -> bytes:
    return bytes(getattr(contract, name)())


def give(system: System, account: Any, amount: int, spender: Any) -> None:
    system.token.transfer(account, amount, sender=system.owner)
    system.token.approve(spender, amount, sender=account)


def build_system(project: Any, accounts: Any, owner: Any, oracle: Any, token: Any) -> System:
    """The `system` fixture (tests/contracts/conftest.py)."""
    coordinator = deploy_coordinator(project, owner, oracle, token)
    settlement = owner.deploy(project.FLBSettlement, coordinator, owner, PARAMETERS)
    coordinator.setSettlement(settlement, sender=owner)
    result = System(
        coordinator, settlement, token, owner, oracle, [accounts[i] for i in (5, 6, 7)], [], accounts[8]
    )
    settlement.grantRole(role(settlement, "FINALIZER_ROLE"), oracle, sender=owner)
    give(result, oracle, FINALIZER_BOND, settlement)
    settlement.depositBond(FINALIZER_BOND, sender=oracle)
    for verifier in result.verifiers:
        settlement.grantRole(role(settlement, "VERIFIER_ROLE"), verifier, sender=owner)
        give(result, verifier, VERIFIER_BOND, settlement)
        settlement.registerVerifier(VERIFIER_BOND, sender=verifier)
    give(result, result.challenger, 10 * CHALLENGE_BOND, settlement)
    result.clients = [accounts[i] for i in (2, 3, 4)]
    for i, client in enumerate(result.clients):
        coordinator.register(keccak(text=f"client {i}"), sender=client)
    return result


def honest(system: System, round_number: int = 1) -> Result:
    a, b, c = system.clients
    per_round = {a.address: 300 * E, b.address: 200 * E, c.address: 100 * E}
    return make_result(round_number, {k: v * round_number for k, v in per_round.items()}, 600 * E)


def self_paying(system: System, round_number: int = 1) -> Result:
    return make_result(round_number, {system.finalizer.address: 900 * E}, 900 * E, tag="self-paying")


def due(system: System, chain: Any, round_number: int = 1) -> None:
    """Every client commits and reveals: the round is due at once."""
    submit_all(system.coordinator, system.clients, chain, round_number)


def propose(system: System, round_number: int, result: Result) -> Any:
    return system.settlement.propose(round_number, 3, result.fields, sender=system.finalizer)


def claim(system: System, client: Any, tree: RewardsTree) -> Any:
    amount = tree.amounts[client.address]
    return system.coordinator.claim(amount, tree.proofs[client.address], sender=client)
