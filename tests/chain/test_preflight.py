"""Each pre-flight rule raises the exception class of the contract's custom error, with its
arguments; a transaction sent past the check reverts into the same class and arguments."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from flb_dapp.chain import preflight
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.types import FinalizeRequest
from flb_dapp.exceptions import (
    AccessControlUnauthorizedAccount,
    ContractRuleError,
    CoordinatorAlreadyCommitted,
    CoordinatorAlreadyRegistered,
    CoordinatorAlreadySubmitted,
    CoordinatorClientBanned,
    CoordinatorCommitmentMismatch,
    CoordinatorCommitmentTaken,
    CoordinatorInvalidCommitment,
    CoordinatorInvalidProof,
    CoordinatorInvalidSampleCount,
    CoordinatorNotCommitted,
    CoordinatorNothingToClaim,
    CoordinatorNotRegistered,
    CoordinatorPoolUnderfunded,
    CoordinatorRevealClosed,
    CoordinatorRevealNotOpen,
    CoordinatorRewardsExceedBudget,
    CoordinatorRoundAlreadyFinalized,
    CoordinatorRoundClosed,
    CoordinatorRoundNotDue,
    CoordinatorSubmissionCountMismatch,
    CoordinatorWrongRound,
    EnforcedPause,
)
from flb_dapp.merkle import build_rewards_tree
from flb_dapp.storage.cid import cid_of_bytes, cid_to_bytes
from tests.chain.conftest import deploy

CID = cid_of_bytes(b"update")


def arguments(error: ContractRuleError) -> dict[str, Any]:
    return {name: getattr(error, name) for name in error.arguments}


def refused(expected: type[ContractRuleError], send: Any) -> dict[str, Any]:
    """Run ``send``; it must raise exactly ``expected``. Returns the error's arguments."""
    with pytest.raises(expected) as caught:
        send()
    assert type(caught.value) is expected
    return arguments(caught.value)


def request(round_number: int, rewards: int = 0, count: int | None = None) -> FinalizeRequest:
    global_cid, report_cid = cid_of_bytes(b"global"), cid_of_bytes(b"report")
    return FinalizeRequest(round_number, global_cid, report_cid, b"\x00" * 32, rewards, 0.5, 0.0, count)


def test_register_rules(system: tuple[Coordinator, Any], accounts: Any) -> None:
    sdk, _ = system
    a = accounts[2]
    assert refused(CoordinatorInvalidCommitment, lambda: sdk.register(a, b"\x00" * 32)) == {}
    sdk.register(a, b"\x01" * 32)
    assert refused(CoordinatorAlreadyRegistered, lambda: sdk.register(a, b"\x02" * 32)) == {
        "client": a.address
    }
    sdk.pause(accounts[0])
    assert refused(EnforcedPause, lambda: sdk.register(accounts[3], b"\x03" * 32)) == {}


def test_a_taken_dataset_commitment_names_its_owner() -> None:
    # NOTE: the commitment is bound to the address that registers it, so two accounts cannot
    # collide on a real chain; a chain view that says otherwise still gets the specific class.
    owner = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A"
    view = SimpleNamespace(
        paused=False,
        client=lambda address: SimpleNamespace(registered=False),
        bound_commitment=lambda address, digest: b"\xbb" * 32,
        contract=SimpleNamespace(ownerOfCommitment=lambda bound: owner.lower()),
    )
    got = refused(CoordinatorCommitmentTaken, lambda: preflight.check_can_register(view, owner, b"\x01" * 32))
    assert got == {"dataset_commitment": b"\xbb" * 32, "owner": owner}


def test_commit_rules(system: tuple[Coordinator, Any], accounts: Any, chain: Any) -> None:
    sdk, _ = system
    a, b, outsider = accounts[2], accounts[3], accounts[8]
    sdk.register(a, b"\x01" * 32)
    sdk.register(b, b"\x02" * 32)
    sdk.register(accounts[4], b"\x03" * 32)
    assert refused(CoordinatorWrongRound, lambda: sdk.commit_update(a, 2, CID, 1)) == {
        "given": 2,
        "current": 1,
    }
    assert refused(CoordinatorNotRegistered, lambda: sdk.commit_update(outsider, 1, CID, 1)) == {
        "client": outsider.address
    }
    assert refused(CoordinatorInvalidSampleCount, lambda: sdk.commit_update(a, 1, CID, 0)) == {
        "num_samples": 0
    }
    pending, _ = sdk.commit_update(a, 1, CID, 1)
    same = {"client": a.address, "round": 1}
    assert refused(CoordinatorAlreadyCommitted, lambda: sdk.commit_update(a, 1, CID, 1)) == same
    sdk.set_client_banned(accounts[0], b.address, True)
    assert refused(CoordinatorClientBanned, lambda: sdk.commit_update(b, 1, CID, 1)) == {"client": b.address}
    sdk.commit_update(accounts[4], 1, CID, 1)  # every active client committed: reveals open
    sdk.reveal_update(a, pending)
    assert refused(CoordinatorAlreadySubmitted, lambda: sdk.commit_update(a, 1, CID, 1)) == same
    sdk.set_client_banned(accounts[0], b.address, False)
    deadline = sdk.round(1).deadline
    chain.mine(deltatime=600)
    got = refused(CoordinatorRoundClosed, lambda: sdk.commit_update(b, 1, CID, 1))
    assert got == {"round": 1, "deadline": deadline}
    sdk.pause(accounts[0])
    assert refused(EnforcedPause, lambda: sdk.commit_update(b, 1, CID, 1)) == {}


def test_reveal_rules(system: tuple[Coordinator, Any], accounts: Any, chain: Any) -> None:
    sdk, _ = system
    a, b, c = accounts[2], accounts[3], accounts[4]
    for i, client in enumerate((a, b, c)):
        sdk.register(client, bytes([i + 1]) * 32)
    pending, _ = sdk.commit_update(a, 1, CID, 1)
    opens_at = sdk.round(1).deadline
    got = refused(CoordinatorRevealNotOpen, lambda: sdk.reveal_update(a, pending))
    assert got == {"round": 1, "opens_at": opens_at}
    assert refused(CoordinatorWrongRound, lambda: sdk.reveal_update(a, replace(pending, round=2))) == {
        "given": 2,
        "current": 1,
    }
    b_pending, _ = sdk.commit_update(b, 1, CID, 1)
    chain.mine(deltatime=600)  # the commit phase is over; c never committed
    assert refused(
        CoordinatorNotCommitted, lambda: sdk.reveal_update(c, replace(pending, client=c.address))
    ) == {
        "client": c.address,
        "round": 1,
    }
    forged = replace(pending, cid=cid_of_bytes(b"someone else's"))
    got = refused(CoordinatorCommitmentMismatch, lambda: sdk.reveal_update(a, forged))
    assert got == {"client": a.address, "round": 1}
    sdk.reveal_update(a, pending)
    got = refused(CoordinatorAlreadySubmitted, lambda: sdk.reveal_update(a, pending))
    assert got == {"client": a.address, "round": 1}
    sdk.set_client_banned(accounts[0], b.address, True)
    assert refused(CoordinatorClientBanned, lambda: sdk.reveal_update(b, b_pending)) == {"client": b.address}
    sdk.set_client_banned(accounts[0], b.address, False)
    closed_at = sdk.round(1).reveal_deadline
    chain.mine(deltatime=sdk.reveal_duration)
    got = refused(CoordinatorRevealClosed, lambda: sdk.reveal_update(b, b_pending))
    assert got == {"round": 1, "closed_at": closed_at}
    sdk.pause(accounts[0])
    assert refused(EnforcedPause, lambda: sdk.reveal_update(b, b_pending)) == {}


def test_finalize_rules(system: tuple[Coordinator, Any], accounts: Any, chain: Any) -> None:
    sdk, _ = system
    oracle, a = accounts[1], accounts[2]
    sdk.register(a, b"\x01" * 32)
    sdk.register(accounts[3], b"\x02" * 32)
    got = refused(AccessControlUnauthorizedAccount, lambda: sdk.finalize_round(a, request(1)))
    assert got == {"account": a.address, "needed_role": bytes(sdk.contract.ORACLE_ROLE())}
    sdk.commit_update(a, 1, CID, 1)
    info = sdk.round(1)
    assert refused(CoordinatorRoundNotDue, lambda: sdk.finalize_round(oracle, request(1))) == {
        "round": 1,
        "deadline": info.deadline,
        "reveal_deadline": info.reveal_deadline,
        "pending_reveals": 1,
    }
    assert refused(CoordinatorWrongRound, lambda: sdk.finalize_round(oracle, request(2))) == {
        "given": 2,
        "current": 1,
    }
    chain.mine(deltatime=600 + sdk.reveal_duration)  # the commitment was never revealed
    got = refused(CoordinatorSubmissionCountMismatch, lambda: sdk.finalize_round(oracle, request(1, count=1)))
    assert got == {"round": 1, "given": 1, "actual": 0}
    got = refused(CoordinatorRewardsExceedBudget, lambda: sdk.finalize_round(oracle, request(1, 1_001)))
    assert got == {"round_rewards": 1_001, "reward_per_round": 1_000}
    sdk.finalize_round(oracle, request(1))
    assert refused(CoordinatorRoundAlreadyFinalized, lambda: sdk.finalize_round(oracle, request(1))) == {
        "round": 1
    }


def test_an_underfunded_pool_is_refused(accounts: Any, chain: Any) -> None:
    sdk, _ = deploy(accounts, fund_amount=500)
    chain.mine(deltatime=600)  # nobody registered: round 1 is due once its commit phase is over
    got = refused(CoordinatorPoolUnderfunded, lambda: sdk.finalize_round(accounts[1], request(1, 600)))
    assert got == {"round_rewards": 600, "available": 500}


def test_claim_rules(system: tuple[Coordinator, Any], accounts: Any, chain: Any) -> None:
    sdk, _ = system
    a = accounts[2]
    sdk.register(a, b"\x01" * 32)
    chain.mine(deltatime=600)
    tree = build_rewards_tree({a.address: 600})
    sdk.finalize_round(accounts[1], replace(request(1, 600), rewards_root=tree.root))
    got = refused(CoordinatorInvalidProof, lambda: sdk.claim(a, 601, tree.proofs[a.address]))
    assert got == {"client": a.address, "cumulative_amount": 601}
    sdk.claim(a, 600, tree.proofs[a.address])
    got = refused(CoordinatorNothingToClaim, lambda: sdk.claim(a, 600, tree.proofs[a.address]))
    assert got == {"client": a.address, "cumulative_amount": 600, "claimed": 600}
    sdk.pause(accounts[0])
    assert refused(EnforcedPause, lambda: sdk.claim(a, 600, tree.proofs[a.address])) == {}


# --- reverts: sent past the pre-flight check, the contract refuses with the same class ----------------
def test_a_duplicate_registration_reverts_into_the_preflight_class(
    system: tuple[Coordinator, Any], accounts: Any
) -> None:
    sdk, _ = system
    a = accounts[2]
    sdk.register(a, b"\x01" * 32)
    checked = refused(CoordinatorAlreadyRegistered, lambda: sdk.check_can_register(a.address, b"\x02" * 32))

    def send() -> None:
        with translate_reverts():
            sdk.contract.register(b"\x02" * 32, sender=a)

    assert refused(CoordinatorAlreadyRegistered, send) == checked == {"client": a.address}


def test_a_late_commit_reverts_into_the_preflight_class(
    system: tuple[Coordinator, Any], accounts: Any, chain: Any
) -> None:
    sdk, _ = system
    a = accounts[2]
    sdk.register(a, b"\x01" * 32)
    chain.mine(deltatime=600)
    checked = refused(CoordinatorRoundClosed, lambda: sdk.check_can_commit(a.address, 1, 1))

    def send() -> None:
        with translate_reverts():
            sdk.contract.commitUpdate(1, b"\x07" * 32, sender=a)

    assert refused(CoordinatorRoundClosed, send) == checked == {"round": 1, "deadline": sdk.round(1).deadline}


def test_a_stale_finalization_reverts_into_the_preflight_class(
    system: tuple[Coordinator, Any], accounts: Any, chain: Any
) -> None:
    sdk, _ = system
    oracle = accounts[1]
    chain.mine(deltatime=600)
    stale = request(1, count=2)
    checked = refused(
        CoordinatorSubmissionCountMismatch, lambda: sdk.check_can_finalize(oracle.address, stale)
    )

    def send() -> None:
        with translate_reverts():
            global_cid, report_cid = cid_to_bytes(stale.global_model_cid), cid_to_bytes(stale.report_cid)
            sdk.contract.finalizeRound(1, 2, global_cid, report_cid, b"\x00" * 32, 0, 0, 0, sender=oracle)

    assert (
        refused(CoordinatorSubmissionCountMismatch, send) == checked == {"round": 1, "given": 2, "actual": 0}
    )


def test_a_finalization_by_a_non_oracle_reverts_into_the_preflight_class(
    system: tuple[Coordinator, Any], accounts: Any, chain: Any
) -> None:
    sdk, _ = system
    outsider = accounts[2]
    chain.mine(deltatime=600)
    checked = refused(
        AccessControlUnauthorizedAccount, lambda: sdk.check_can_finalize(outsider.address, request(1))
    )
    cid = cid_to_bytes(CID)

    def send() -> None:
        with translate_reverts():
            sdk.contract.finalizeRound(1, 0, cid, cid, b"\x00" * 32, 0, 0, 0, sender=outsider)

    assert refused(AccessControlUnauthorizedAccount, send) == checked
    assert checked == {"account": outsider.address, "needed_role": bytes(sdk.contract.ORACLE_ROLE())}


def test_in_a_batch_round_state_is_read_once_and_the_contract_still_refuses_what_went_stale(
    system: tuple[Coordinator, Any], accounts: Any
) -> None:
    """``Coordinator.batch`` reads paused / the open round / round info once for many
    transactions; a pause that lands inside the batch is not seen by the pre-flight check, and the
    contract refuses the commit with the same class the check would have raised."""
    sdk, _ = system
    a, b = accounts[2], accounts[3]
    sdk.register(a, b"\x01" * 32)
    sdk.register(b, b"\x02" * 32)
    reads: list[str] = []

    def spy(name: str) -> Any:
        method = getattr(sdk.contract, name)

        def read(*args: Any) -> Any:
            reads.append(name)
            return method(*args)

        return read

    contract = sdk.contract
    sdk.contract = SimpleNamespace(
        commitUpdate=contract.commitUpdate,
        clientInfo=contract.clientInfo,
        **{name: spy(name) for name in ("paused", "currentRound", "roundInfo")},
    )
    with sdk.batch():
        sdk.commit_update(a, 1, CID, 1)
        Coordinator(sdk.address).pause(accounts[0])
        assert refused(EnforcedPause, lambda: sdk.commit_update(b, 1, CID, 1)) == {}
    assert reads == ["paused", "currentRound", "roundInfo"]
    assert refused(EnforcedPause, lambda: sdk.commit_update(b, 1, CID, 1)) == {}  # out of it: read again
    assert reads[3:] == ["paused"]
