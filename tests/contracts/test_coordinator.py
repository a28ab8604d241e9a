"""Contract tests: every external function, custom error (with its arguments) and event."""

from __future__ import annotations

from typing import Any

import ape

from flb_dapp.merkle import build_rewards_tree
from tests.contracts.conftest import (
    DURATION,
    FUNDING,
    INITIAL_CID,
    REWARD_PER_ROUND,
    commitment,
    deploy_coordinator,
    raw_cid,
)

GLOBAL_1 = raw_cid(b"global after round 1")
REPORT_1 = raw_cid(b"report of round 1", codec=0x70)


def role(coordinator: Any, name: str) -> bytes:
    return bytes(getattr(coordinator, name)())


def submit_all(coordinator: Any, clients: list[Any], round_number: int = 1) -> None:
    for i, client in enumerate(clients):
        coordinator.submitUpdate(
            round_number, raw_cid(f"update {round_number} {i}".encode()), 10 + i, sender=client
        )


def finalize(
    coordinator: Any, oracle: Any, round_number: int, root: bytes, rewards: int, metric: int = 500_000
) -> Any:
    return coordinator.finalizeRound(
        round_number,
        raw_cid(f"global {round_number}".encode()),
        raw_cid(f"report {round_number}".encode()),
        root,
        rewards,
        metric,
        0,
        sender=oracle,
    )


# --- deployment -----------------------------------------------------------------------------------
def test_constructor_opens_round_one_from_the_initial_model(
    coordinator: Any, owner: Any, oracle: Any, chain: Any
) -> None:
    receipt = chain.get_receipt(coordinator.txn_hash)
    opened_at = chain.blocks[receipt.block_number].timestamp
    assert coordinator.currentRound() == 1
    assert coordinator.roundDuration() == DURATION
    assert coordinator.rewardPerRound() == REWARD_PER_ROUND
    assert coordinator.latestGlobalModelCid() == INITIAL_CID
    genesis = coordinator.roundInfo(0)
    assert genesis.globalModelCid == INITIAL_CID and genesis.reportCid == b""
    assert coordinator.roundInfo(1).deadline == opened_at + DURATION
    assert coordinator.hasRole(role(coordinator, "ORACLE_ROLE"), oracle)
    assert coordinator.hasRole(role(coordinator, "DEFAULT_ADMIN_ROLE"), owner)
    assert not coordinator.hasRole(role(coordinator, "ORACLE_ROLE"), owner)
    assert receipt.events == [
        coordinator.RoleGranted(role=role(coordinator, "DEFAULT_ADMIN_ROLE"), account=owner, sender=owner),
        coordinator.RoleGranted(role=role(coordinator, "ORACLE_ROLE"), account=oracle, sender=owner),
        coordinator.RoundParametersUpdated(roundDuration=DURATION, rewardPerRound=REWARD_PER_ROUND),
        coordinator.RoundOpened(round=1, deadline=opened_at + DURATION),
    ]


def test_constructor_refuses_zero_duration_and_bad_cid(
    project: Any, owner: Any, oracle: Any, token: Any
) -> None:
    with ape.reverts(project.FLBCoordinator.CoordinatorInvalidRoundDuration, roundDuration=0):
        owner.deploy(
            project.FLBCoordinator, token, owner, oracle, INITIAL_CID, 0, REWARD_PER_ROUND, gas=3_000_000
        )
    with ape.reverts(project.FLBCoordinator.CoordinatorInvalidCid, cid=b"\x12\x20" + b"\x00" * 32):
        owner.deploy(
            project.FLBCoordinator, token, owner, oracle, b"\x12\x20" + b"\x00" * 32, 60, 1, gas=3_000_000
        )


def test_fund_rewards_moves_tokens_and_emits(coordinator: Any, token: Any, owner: Any) -> None:
    assert coordinator.rewardTotals() == (FUNDING, 0, 0)
    assert token.balanceOf(coordinator) == FUNDING
    token.approve(coordinator, 5, sender=owner)
    receipt = coordinator.fundRewards(5, sender=owner)
    assert receipt.events.filter(coordinator.RewardsFunded) == [
        coordinator.RewardsFunded(funder=owner, amount=5, totalFunded=FUNDING + 5)
    ]
    with ape.reverts(coordinator.CoordinatorZeroAmount):
        coordinator.fundRewards(0, sender=owner)


# --- registration -----------------------------------------------------------------------------------
def test_register_records_the_commitment(coordinator: Any, clients: list[Any]) -> None:
    client = clients[0]
    receipt = coordinator.register(commitment("a"), sender=client)
    assert receipt.events == [
        coordinator.ClientRegistered(client=client, datasetCommitment=commitment("a"), round=1)
    ]
    info = coordinator.clientInfo(client)
    assert (info.registered, info.banned, info.lastSubmittedRound, info.submissions, info.claimed) == (
        True,
        False,
        0,
        0,
        0,
    )
    assert info.datasetCommitment == commitment("a")
    assert coordinator.ownerOfCommitment(commitment("a")) == client
    assert coordinator.activeClients() == 1


def test_register_refuses_duplicates(coordinator: Any, clients: list[Any]) -> None:
    coordinator.register(commitment("a"), sender=clients[0])
    with ape.reverts(coordinator.CoordinatorAlreadyRegistered, client=clients[0]):
        coordinator.register(commitment("b"), sender=clients[0])
    with ape.reverts(
        coordinator.CoordinatorCommitmentTaken, datasetCommitment=commitment("a"), owner=clients[0]
    ):
        coordinator.register(commitment("a"), sender=clients[1])
    with ape.reverts(coordinator.CoordinatorInvalidCommitment):
        coordinator.register(b"\x00" * 32, sender=clients[1])
    assert coordinator.activeClients() == 1


# --- submissions ------------------------------------------------------------------------------------
def test_submit_update_emits_and_counts(coordinator: Any, registered: list[Any]) -> None:
    cid = raw_cid(b"update")
    receipt = coordinator.submitUpdate(1, cid, 42, sender=registered[0])
    assert receipt.events == [
        coordinator.UpdateSubmitted(round=1, client=registered[0], cid=cid, numSamples=42)
    ]
    assert coordinator.roundInfo(1).submissions == 1
    assert coordinator.hasSubmitted(registered[0], 1)
    assert not coordinator.hasSubmitted(registered[1], 1)
    info = coordinator.clientInfo(registered[0])
    assert (info.lastSubmittedRound, info.submissions) == (1, 1)


def test_submit_update_rules(coordinator: Any, registered: list[Any], outsider: Any, chain: Any) -> None:
    cid = raw_cid(b"update")
    with ape.reverts(coordinator.CoordinatorNotRegistered, client=outsider):
        coordinator.submitUpdate(1, cid, 1, sender=outsider)
    with ape.reverts(coordinator.CoordinatorWrongRound, given=2, current=1):
        coordinator.submitUpdate(2, cid, 1, sender=registered[0])
    with ape.reverts(coordinator.CoordinatorInvalidSampleCount, numSamples=0):
        coordinator.submitUpdate(1, cid, 0, sender=registered[0])
    for bad in (cid[:-1], b"\x01\x71\x12\x20" + cid[4:], b"\x00" + cid[1:], b""):
        with ape.reverts(coordinator.CoordinatorInvalidCid, cid=bad):
            coordinator.submitUpdate(1, bad, 1, sender=registered[0])
    coordinator.submitUpdate(1, cid, 1, sender=registered[0])
    with ape.reverts(coordinator.CoordinatorAlreadySubmitted, client=registered[0], round=1):
        coordinator.submitUpdate(1, raw_cid(b"other"), 1, sender=registered[0])
    deadline = coordinator.roundInfo(1).deadline
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.CoordinatorRoundClosed, round=1, deadline=deadline):
        coordinator.submitUpdate(1, cid, 1, sender=registered[1])


def test_banned_client_cannot_submit_and_is_not_active(
    coordinator: Any, registered: list[Any], owner: Any, outsider: Any
) -> None:
    receipt = coordinator.setClientBanned(registered[0], True, sender=owner)
    assert receipt.events == [coordinator.ClientBanStatusChanged(client=registered[0], banned=True)]
    assert coordinator.activeClients() == 2
    with ape.reverts(coordinator.CoordinatorClientBanned, client=registered[0]):
        coordinator.submitUpdate(1, raw_cid(b"x"), 1, sender=registered[0])
    coordinator.setClientBanned(registered[0], False, sender=owner)
    assert coordinator.activeClients() == 3
    with ape.reverts(coordinator.CoordinatorNotRegistered, client=outsider):
        coordinator.setClientBanned(outsider, True, sender=owner)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "DEFAULT_ADMIN_ROLE"),
    ):
        coordinator.setClientBanned(registered[0], True, sender=outsider)


def test_pause_stops_register_submit_and_claim(
    coordinator: Any, registered: list[Any], owner: Any, clients: list[Any]
) -> None:
    receipt = coordinator.pause(sender=owner)
    assert receipt.events == [coordinator.Paused(account=owner)]
    with ape.reverts(coordinator.EnforcedPause):
        coordinator.register(commitment("late"), sender=clients[4])
    with ape.reverts(coordinator.EnforcedPause):
        coordinator.submitUpdate(1, raw_cid(b"x"), 1, sender=registered[0])
    with ape.reverts(coordinator.EnforcedPause):
        coordinator.claim(1, [], sender=registered[0])
    receipt = coordinator.unpause(sender=owner)
    assert receipt.events == [coordinator.Unpaused(account=owner)]
    coordinator.submitUpdate(1, raw_cid(b"x"), 1, sender=registered[0])


# --- finalization -----------------------------------------------------------------------------------
def test_finalize_only_by_the_oracle(
    coordinator: Any, registered: list[Any], outsider: Any, chain: Any
) -> None:
    chain.mine(deltatime=DURATION)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "ORACLE_ROLE"),
    ):
        finalize(coordinator, outsider, 1, b"\x00" * 32, 0)


def test_finalize_waits_for_deadline_or_everyone(
    coordinator: Any, registered: list[Any], oracle: Any
) -> None:
    deadline = coordinator.roundInfo(1).deadline
    submit_all(coordinator, registered[:2])
    with ape.reverts(
        coordinator.CoordinatorRoundNotDue, round=1, deadline=deadline, submissions=2, activeClients=3
    ):
        finalize(coordinator, oracle, 1, b"\x00" * 32, 0)
    coordinator.submitUpdate(1, raw_cid(b"last"), 5, sender=registered[2])
    finalize(coordinator, oracle, 1, b"\x00" * 32, 0)
    assert coordinator.currentRound() == 2


def test_finalize_after_deadline_records_everything(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    submit_all(coordinator, registered[:1])
    chain.mine(deltatime=DURATION)
    root = b"\xab" * 32
    receipt = coordinator.finalizeRound(1, GLOBAL_1, REPORT_1, root, 700, 612_500, 1_250_000, sender=oracle)
    finalized_at = chain.blocks[receipt.block_number].timestamp
    assert receipt.events == [
        coordinator.RoundFinalized(
            round=1,
            globalModelCid=GLOBAL_1,
            reportCid=REPORT_1,
            rewardsRoot=root,
            roundRewards=700,
            metricPpm=612_500,
            epsilonMicros=1_250_000,
        ),
        coordinator.RoundOpened(round=2, deadline=finalized_at + DURATION),
    ]
    info = coordinator.roundInfo(1)
    assert (info.round, info.finalizedAt, info.submissions, info.metricPpm, info.epsilonMicros) == (
        1,
        finalized_at,
        1,
        612_500,
        1_250_000,
    )
    assert (info.globalModelCid, info.reportCid, info.rewardsRoot) == (GLOBAL_1, REPORT_1, root)
    assert coordinator.latestGlobalModelCid() == GLOBAL_1
    assert coordinator.roundInfo(2).deadline == finalized_at + DURATION
    assert coordinator.rewardTotals() == (FUNDING, 700, 0)


def test_finalize_exactly_once_and_in_order(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.CoordinatorWrongRound, given=2, current=1):
        finalize(coordinator, oracle, 2, b"\x00" * 32, 0)
    finalize(coordinator, oracle, 1, b"\x00" * 32, 0)
    with ape.reverts(coordinator.CoordinatorRoundAlreadyFinalized, round=1):
        finalize(coordinator, oracle, 1, b"\x00" * 32, 0)


def test_finalize_budget_pool_metric_and_cid_checks(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any
) -> None:
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=100)
    chain.mine(deltatime=DURATION)
    with ape.reverts(
        coordinator.CoordinatorRewardsExceedBudget,
        roundRewards=REWARD_PER_ROUND + 1,
        rewardPerRound=REWARD_PER_ROUND,
    ):
        finalize(coordinator, oracle, 1, b"\x00" * 32, REWARD_PER_ROUND + 1)
    with ape.reverts(coordinator.CoordinatorPoolUnderfunded, roundRewards=101, available=100):
        finalize(coordinator, oracle, 1, b"\x00" * 32, 101)
    with ape.reverts(coordinator.CoordinatorMetricOutOfRange, metricPpm=1_000_001):
        finalize(coordinator, oracle, 1, b"\x00" * 32, 0, metric=1_000_001)
    with ape.reverts(coordinator.CoordinatorInvalidCid, cid=b"\x01"):
        coordinator.finalizeRound(1, b"\x01", REPORT_1, b"\x00" * 32, 0, 0, 0, sender=oracle)


def test_set_round_parameters(
    coordinator: Any, owner: Any, outsider: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    receipt = coordinator.setRoundParameters(60, 5, sender=owner)
    assert receipt.events == [coordinator.RoundParametersUpdated(roundDuration=60, rewardPerRound=5)]
    with ape.reverts(coordinator.CoordinatorInvalidRoundDuration, roundDuration=0):
        coordinator.setRoundParameters(0, 5, sender=owner)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "DEFAULT_ADMIN_ROLE"),
    ):
        coordinator.setRoundParameters(60, 5, sender=outsider)
    chain.mine(deltatime=DURATION)
    receipt = finalize(coordinator, oracle, 1, b"\x00" * 32, 5)
    opened = chain.blocks[receipt.block_number].timestamp
    assert coordinator.roundInfo(2).deadline == opened + 60


def test_oracle_role_can_be_granted_and_revoked(
    coordinator: Any, owner: Any, outsider: Any, chain: Any
) -> None:
    oracle_role = role(coordinator, "ORACLE_ROLE")
    receipt = coordinator.grantRole(oracle_role, outsider, sender=owner)
    assert receipt.events == [coordinator.RoleGranted(role=oracle_role, account=outsider, sender=owner)]
    chain.mine(deltatime=DURATION)
    finalize(coordinator, outsider, 1, b"\x00" * 32, 0)
    coordinator.revokeRole(oracle_role, outsider, sender=owner)
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.AccessControlUnauthorizedAccount, account=outsider, neededRole=oracle_role):
        finalize(coordinator, outsider, 2, b"\x00" * 32, 0)


# --- claims -----------------------------------------------------------------------------------------
def test_cumulative_claims(
    coordinator: Any, registered: list[Any], oracle: Any, token: Any, chain: Any
) -> None:
    a, b, c = registered
    submit_all(coordinator, registered)
    first = build_rewards_tree({a.address: 300, b.address: 200})
    finalize(coordinator, oracle, 1, first.root, 500)

    receipt = coordinator.claim(300, first.proofs[a.address], sender=a)
    assert receipt.events.filter(coordinator.RewardClaimed) == [
        coordinator.RewardClaimed(client=a, amount=300, cumulativeAmount=300)
    ]
    assert token.balanceOf(a) == 300 and coordinator.scoreOf(a) == 300

    with ape.reverts(coordinator.CoordinatorNothingToClaim, client=a, cumulativeAmount=300, claimed=300):
        coordinator.claim(300, first.proofs[a.address], sender=a)
    with ape.reverts(coordinator.CoordinatorInvalidProof, client=b, cumulativeAmount=201):
        coordinator.claim(201, first.proofs[b.address], sender=b)
    with ape.reverts(coordinator.CoordinatorInvalidProof, client=c, cumulativeAmount=300):
        coordinator.claim(300, first.proofs[a.address], sender=c)

    submit_all(coordinator, registered, round_number=2)
    second = build_rewards_tree({a.address: 700, b.address: 200, c.address: 100})
    finalize(coordinator, oracle, 2, second.root, 500)
    # One claim covers every round so far; b claims rounds 1 and 2 at once.
    coordinator.claim(700, second.proofs[a.address], sender=a)
    coordinator.claim(200, second.proofs[b.address], sender=b)
    coordinator.claim(100, second.proofs[c.address], sender=c)
    assert [token.balanceOf(x) for x in (a, b, c)] == [700, 200, 100]
    assert coordinator.rewardTotals() == (FUNDING, 1000, 1000)
    # The old root no longer pays.
    with ape.reverts(coordinator.CoordinatorInvalidProof, client=a, cumulativeAmount=300):
        coordinator.claim(300, first.proofs[a.address], sender=a)


def test_claims_can_never_exceed_the_declared_allocation(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    a, b, _ = registered
    chain.mine(deltatime=DURATION)
    tree = build_rewards_tree({a.address: 300, b.address: 300})
    finalize(coordinator, oracle, 1, tree.root, 400)  # a faulty oracle declares less than the tree
    coordinator.claim(300, tree.proofs[a.address], sender=a)
    with ape.reverts(coordinator.CoordinatorClaimExceedsAllocation, amount=300, owed=100):
        coordinator.claim(300, tree.proofs[b.address], sender=b)


def test_claim_before_any_round_is_refused(coordinator: Any, registered: list[Any]) -> None:
    with ape.reverts(coordinator.CoordinatorInvalidProof, client=registered[0], cumulativeAmount=1):
        coordinator.claim(1, [], sender=registered[0])
