"""The settlement SDK (flb_dapp/chain/settlement.py): deployment and wiring, the off-chain result
hash, and reverts of both contracts turned into their FLB exception classes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from flb_dapp.chain.artifacts import SETTLEMENT, artifact_json
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.reverts import SETTLEMENT_ERRORS, snake_case
from flb_dapp.chain.settlement import (
    PART_METRICS,
    PART_REWARDS,
    RoundResult,
    Settlement,
    SettlementParameters,
    differing_parts,
    result_hash,
)
from flb_dapp.chain.settlement_errors import SettlementAlreadyAttested, SettlementChallengeWindowOpen
from flb_dapp.exceptions import ChainError, CoordinatorRoundNotDue, PreflightError
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.storage.cid import cid_of_bytes
from tests.chain.conftest import deploy

PARAMETERS = SettlementParameters(1_000, 100, 50, 600, 600, 600, 2, 5_000)
INHERITED = {"AccessControlUnauthorizedAccount"}


def test_each_settlement_error_has_a_class_with_its_parameters() -> None:
    abi = artifact_json(SETTLEMENT)["abi"]
    errors = {e["name"]: tuple(i["name"] for i in e["inputs"]) for e in abi if e["type"] == "error"}
    assert set(SETTLEMENT_ERRORS) == {name for name in errors if name.startswith("Settlement")}
    for name, cls in SETTLEMENT_ERRORS.items():
        assert cls.arguments == tuple(snake_case(p) for p in errors[name]), name
        assert issubclass(cls, PreflightError) and issubclass(cls, ChainError)
    assert set(errors) >= INHERITED


def test_differing_parts_names_what_changed() -> None:
    base = RoundResult(cid_of_bytes(b"g"), cid_of_bytes(b"r"), b"\x01" * 32, 10, 500_000, 0)
    assert differing_parts(base, base) == 0
    assert differing_parts(base, replace(base, round_rewards=11)) == PART_REWARDS
    assert differing_parts(base, replace(base, epsilon_micros=1, rewards_root=b"\x02" * 32)) == (
        PART_METRICS | PART_REWARDS
    )


@pytest.fixture
def deployed(accounts: Any) -> tuple[Coordinator, Settlement]:
    coordinator, record = deploy(accounts, settlement=PARAMETERS)
    assert record.settlement
    settlement = Settlement(record.settlement)
    for member in (accounts[1], accounts[5], accounts[6]):
        coordinator.token.transfer(member.address, 10_000, sender=accounts[0])
    settlement.deposit_bond(accounts[1], PARAMETERS.min_finalizer_bond)
    for verifier in (accounts[5], accounts[6]):
        settlement.grant(accounts[0], "VERIFIER_ROLE", verifier.address)
        settlement.register_verifier(verifier, PARAMETERS.min_verifier_bond)
    return coordinator, settlement


def test_a_round_settles_through_the_sdk(
    deployed: tuple[Coordinator, Settlement], accounts: Any, chain: Any
) -> None:
    coordinator, settlement = deployed
    assert settlement.coordinator_address == coordinator.address
    assert settlement.parameters == PARAMETERS
    tree = build_rewards_tree({accounts[2].address: 400})
    result = RoundResult(cid_of_bytes(b"global 1"), cid_of_bytes(b"report 1"), tree.root, 400, 612_500, 0)
    with pytest.raises(CoordinatorRoundNotDue) as refused:  # the coordinator's rule, through the settlement
        settlement.propose(accounts[1], 1, result, 0)
    assert refused.value.round == 1
    chain.mine(deltatime=600)
    settlement.propose(accounts[1], 1, result, 0)
    expected = result_hash(1, b"\x00" * 32, result)
    assert settlement.hash_of(1, result) == expected
    assert bytes(settlement.contract.resultHashOf(1, b"\x00" * 32, result.as_tuple())) == expected
    proposal = settlement.proposal(1)
    assert (proposal.result_hash, proposal.round_rewards, proposal.decided) == (expected, 400, False)
    with pytest.raises(SettlementChallengeWindowOpen) as early:
        settlement.finalize(accounts[3], 1)
    assert (early.value.round, early.value.window_end) == (1, proposal.window_end)
    settlement.attest(accounts[5], 1, expected)
    with pytest.raises(SettlementAlreadyAttested) as twice:
        settlement.attest(accounts[5], 1, expected)
    assert (twice.value.round, twice.value.verifier) == (1, accounts[5].address)
    assert settlement.finalize_ready(accounts[3], coordinator.now()) == []
    chain.mine(deltatime=600)
    assert settlement.finalize_ready(accounts[3], coordinator.now()) == [1]
    assert coordinator.latest_confirmed_round == 1 and coordinator.round(1).confirmed
    assert settlement.bond(accounts[5].address).locked_until_round == 1
    assert "final" in settlement.describe(1)
