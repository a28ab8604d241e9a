"""Every custom error of the coordinator has one FLB exception class, and revert translation turns a
revert into that class with the decoded arguments."""

from __future__ import annotations

import pickle

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from flb_dapp.chain.artifacts import COORDINATOR, artifact_json
from flb_dapp.chain.reverts import (
    CONTRACT_ERRORS,
    _raw_revert_data,
    decode_revert_data,
    revert_error,
    snake_case,
)
from flb_dapp.exceptions import (
    ChainError,
    ContractRuleError,
    CoordinatorNothingToClaim,
    CoordinatorRoundClosed,
    PreflightError,
)

CLIENT = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
# NOTE: OpenZeppelin's errors the pre-flight checks mirror; the coordinator inherits them.
INHERITED = {"EnforcedPause", "AccessControlUnauthorizedAccount"}


def abi_errors() -> dict[str, tuple[str, ...]]:
    abi = artifact_json(COORDINATOR)["abi"]
    return {e["name"]: tuple(i["name"] for i in e["inputs"]) for e in abi if e["type"] == "error"}


def test_each_coordinator_error_has_a_class_with_its_parameters() -> None:
    errors = abi_errors()
    mirrored = {name for name in errors if name.startswith("Coordinator")} | INHERITED
    assert set(CONTRACT_ERRORS) == mirrored
    for name, cls in CONTRACT_ERRORS.items():
        assert cls.arguments == tuple(snake_case(p) for p in errors[name]), name
        assert issubclass(cls, PreflightError) and issubclass(cls, ChainError)


def test_snake_case_of_solidity_parameters() -> None:
    assert [snake_case(n) for n in ("round", "cumulativeAmount", "neededRole", "opensAt")] == [
        "round",
        "cumulative_amount",
        "needed_role",
        "opens_at",
    ]


def test_a_decoded_revert_becomes_its_class_with_the_arguments() -> None:
    error = revert_error(
        "CoordinatorNothingToClaim",
        {"client": CLIENT.lower(), "cumulativeAmount": 10, "claimed": 10},
        "transaction reverted: CoordinatorNothingToClaim(...)",
    )
    assert type(error) is CoordinatorNothingToClaim
    assert (error.client, error.cumulative_amount, error.claimed) == (CLIENT, 10, 10)
    assert str(error) == "transaction reverted: CoordinatorNothingToClaim(...)"


def test_other_reverts_stay_plain_chain_errors() -> None:
    unknown = revert_error("ERC20InsufficientBalance", {"sender": CLIENT}, "transaction reverted: x")
    drifted = revert_error("CoordinatorRoundClosed", {"round": 1}, "transaction reverted: y")
    assert type(unknown) is ChainError and str(unknown) == "transaction reverted: x"
    assert type(drifted) is ChainError and str(drifted) == "transaction reverted: y"


def test_a_rule_error_needs_exactly_its_arguments_and_survives_pickling() -> None:
    with pytest.raises(TypeError, match=r"CoordinatorRoundClosed takes \['round', 'deadline'\]"):
        CoordinatorRoundClosed("closed", round=1)
    error = CoordinatorRoundClosed("closed", round=3, deadline=1_700_000_000)
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), str(copy), copy.round, copy.deadline) == (
        CoordinatorRoundClosed,
        "closed",
        3,
        1_700_000_000,
    )
    assert isinstance(copy, ContractRuleError)


def test_revert_data_ape_left_undecoded_is_decoded_from_the_abi() -> None:
    data = keccak(text="CoordinatorAlreadyRegistered(address)")[:4] + abi_encode(["address"], [CLIENT])
    assert data[:4] == bytes.fromhex("ac8a27ef")  # holds a ' byte: Ape writes it as b"..."
    assert _raw_revert_data(repr(data)) == data and repr(data).startswith('b"')
    assert decode_revert_data(data) == ("CoordinatorAlreadyRegistered", {"client": CLIENT})
    assert decode_revert_data(b"\x00\x00\x00\x00") is None
    assert decode_revert_data(data[:10]) is None  # truncated arguments
    assert _raw_revert_data("CoordinatorAlreadyRegistered") is None
