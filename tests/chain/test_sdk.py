"""The typed SDK: deployment, reads, events as domain objects, and pre-flight refusals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flb_dapp.chain.artifacts import COORDINATOR, REWARD_TOKEN, SETTLEMENT, abi_hash, artifact_json
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord, existing_deployment
from flb_dapp.chain.types import FinalizeRequest, UpdateRecord
from flb_dapp.exceptions import ChainError, ConfigError, DeploymentNotFoundError, PreflightError
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.storage.cid import cid_of_bytes, cid_to_bytes
from tests.chain.conftest import INITIAL

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_system_records_and_funds(
    system: tuple[Coordinator, DeploymentRecord], accounts: Any, chain: Any
) -> None:
    sdk, record = system
    assert record.chain_id == chain.chain_id
    assert record.abi_hash == abi_hash(COORDINATOR)
    assert (record.deployer, record.oracle) == (accounts[0].address, accounts[1].address)
    assert sdk.current_round == 1
    assert sdk.latest_global_model_cid == INITIAL
    assert sdk.reward_totals == (5_000, 0, 0)
    assert sdk.is_oracle(accounts[1].address) and not sdk.is_oracle(accounts[0].address)
    assert sdk.is_admin(accounts[0].address)
    assert sdk.token_balance(accounts[0].address) == 10**6 - 5_000


def test_record_round_trip_and_refusals(system: tuple[Coordinator, DeploymentRecord], tmp_path: Path) -> None:
    _, record = system
    path = record.save(tmp_path / "d.json")
    assert DeploymentRecord.load(path) == record
    assert existing_deployment(path) == record
    with pytest.raises(DeploymentNotFoundError, match="run `ape run deploy` first"):
        DeploymentRecord.load(tmp_path / "missing.json")
    stale = json.loads(path.read_text()) | {"abi_hash": "0xdead"}
    path.write_text(json.dumps(stale))
    with pytest.raises(ConfigError, match="another contract ABI"):
        DeploymentRecord.load(path)
    assert existing_deployment(path) is None


def test_round_lifecycle_through_the_sdk(
    system: tuple[Coordinator, DeploymentRecord], accounts: Any, chain: Any
) -> None:
    sdk, _ = system
    a, b = accounts[2], accounts[3]
    sdk.register(a, b"\x01" * 32)
    sdk.register(b, b"\x02" * 32)
    cid_a, cid_b = cid_of_bytes(b"update a"), cid_of_bytes(b"update b")
    pending_a, _ = sdk.commit_update(a, 1, cid_a, 10, salt=b"\x0a" * 32)
    assert (
        pending_a.commitment
        == "0x" + sdk.contract.computeCommitment(a.address, 1, cid_to_bytes(cid_a), 10, b"\x0a" * 32).hex()
    )
    assert sdk.round_phase(1) == "commit" and sdk.updates(round_number=1) == []  # the CID is not public yet
    pending_b, _ = sdk.commit_update(b, 1, cid_b, 20)
    assert sdk.round_phase(1) == "reveal"  # every active client committed: the commit phase closed
    sdk.reveal_update(a, pending_a)
    assert not sdk.round_is_due(1)  # b's reveal is pending
    receipt = sdk.reveal_update(b, pending_b)
    updates = sdk.updates(round_number=1)
    assert updates == [
        UpdateRecord(
            1,
            a.address,
            cid_a,
            10,
            updates[0].block_number,
            updates[0].transaction_hash,
            updates[0].log_index,
        ),
        UpdateRecord(
            1, b.address, cid_b, 20, receipt.block_number, updates[1].transaction_hash, updates[1].log_index
        ),
    ]
    assert [r.client for r in sdk.registrations()] == [a.address, b.address]
    assert sdk.round_is_due(1)  # every commitment revealed

    tree = build_rewards_tree({a.address: 600, b.address: 400})
    request = FinalizeRequest(
        1, cid_of_bytes(b"global 1"), cid_of_bytes(b"report 1"), tree.root, 1_000, 0.75, 1.5
    )
    sdk.finalize_round(accounts[1], request)
    info = sdk.round(1)
    assert (info.finalized, info.metric, info.epsilon, info.rewards_root) == (True, 0.75, 1.5, tree.root_hex)
    assert (info.global_model_cid, info.report_cid) == (request.global_model_cid, request.report_cid)
    [event] = sdk.finalizations()
    assert (event.round, event.global_model_cid, event.round_rewards, event.metric) == (
        1,
        request.global_model_cid,
        1_000,
        0.75,
    )

    sdk.claim(a, 600, tree.proofs[a.address])
    assert sdk.client(a.address).claimed == 600
    assert sdk.token_balance(a.address) == 600
    assert [(c.client, c.amount) for c in sdk.claims()] == [(a.address, 600)]


def test_preflight_refusals_send_nothing(
    system: tuple[Coordinator, DeploymentRecord], accounts: Any, chain: Any
) -> None:
    sdk, _ = system
    a, outsider = accounts[2], accounts[8]
    sdk.register(a, b"\x01" * 32)
    nonce = a.nonce
    with pytest.raises(PreflightError, match="is already registered"):
        sdk.register(a, b"\x05" * 32)
    with pytest.raises(PreflightError, match="run `flb register` first"):
        sdk.commit_update(outsider, 1, cid_of_bytes(b"x"), 1)
    with pytest.raises(PreflightError, match="round 2 is not open; the open round is 1"):
        sdk.commit_update(a, 2, cid_of_bytes(b"x"), 1)
    sdk.register(accounts[3], b"\x03" * 32)
    pending, _ = sdk.commit_update(a, 1, cid_of_bytes(b"x"), 1)
    nonce = a.nonce
    with pytest.raises(PreflightError, match="already committed an update in round 1"):
        sdk.commit_update(a, 1, cid_of_bytes(b"y"), 1)
    with pytest.raises(PreflightError, match=r"round 1 takes reveals from .* commit phase closes"):
        sdk.reveal_update(a, pending)
    request = FinalizeRequest(1, cid_of_bytes(b"g"), cid_of_bytes(b"r"), b"\x00" * 32, 0, 0.5)
    with pytest.raises(PreflightError, match="does not hold the oracle role"):
        sdk.finalize_round(a, request)
    with pytest.raises(
        PreflightError, match=r"round 1 is not due: commits until .* 1 commitments not revealed"
    ):
        sdk.finalize_round(accounts[1], request)
    chain.mine(deltatime=600)
    with pytest.raises(PreflightError, match=r"the commit phase of round 1 closed at .* wait for the oracle"):
        sdk.commit_update(accounts[3], 1, cid_of_bytes(b"late"), 1)
    forged = replace(pending, cid=cid_of_bytes(b"copied from someone else"))
    with pytest.raises(PreflightError, match=r"does not match .*'s commitment in round 1"):
        sdk.reveal_update(a, forged)
    sdk.reveal_update(a, pending)
    with pytest.raises(PreflightError, match="holds 1 revealed updates, not the 2 aggregated"):
        sdk.finalize_round(accounts[1], replace(request, submission_count=2))
    with pytest.raises(PreflightError, match="exceed the budget of 1000"):
        sdk.finalize_round(
            accounts[1],
            FinalizeRequest(1, request.global_model_cid, request.report_cid, b"\x00" * 32, 1_001, 0.5),
        )
    assert a.nonce == nonce + 1  # nothing but the reveal was sent
    sdk.finalize_round(accounts[1], request)
    with pytest.raises(PreflightError, match="round 1 is already finalized"):
        sdk.finalize_round(accounts[1], request)
    with pytest.raises(PreflightError, match="does not match the rewards root of round 1"):
        sdk.claim(a, 5, [])


def test_ban_changes_reader(system: tuple[Coordinator, DeploymentRecord], accounts: Any) -> None:
    sdk, _ = system
    sdk.register(accounts[2], b"\x01" * 32)
    sdk.set_client_banned(accounts[0], accounts[2].address, True)
    sdk.set_client_banned(accounts[0], accounts[2].address, False)
    assert [(b.client, b.banned) for b in sdk.ban_changes()] == [
        (accounts[2].address, True),
        (accounts[2].address, False),
    ]


def test_sdk_refuses_an_address_without_code(accounts: Any) -> None:
    with pytest.raises(ChainError, match="no contract at"):
        Coordinator(accounts[9].address)


def test_shipped_artifacts_match_a_fresh_compile() -> None:
    build = json.loads((ROOT / ".build" / "__local__.json").read_text())["contractTypes"]
    for name in (COORDINATOR, REWARD_TOKEN, SETTLEMENT):
        shipped = artifact_json(name)
        assert shipped["abi"] == build[name]["abi"], f"run `make compile`: {name} ABI drifted"
        assert shipped["deploymentBytecode"] == build[name]["deploymentBytecode"], (
            f"run `make compile`: {name}"
        )
