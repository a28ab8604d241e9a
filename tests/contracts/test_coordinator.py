"""Contract tests: every external function, custom error (with its arguments) and event."""

from __future__ import annotations

from typing import Any

import ape

from flb_dapp.merkle import build_rewards_tree
from tests.contracts.conftest import (
    DURATION,
    FUNDING,
    INITIAL_CID,
    OPEN_FREE,
    REVEAL,
    REWARD_PER_ROUND,
    bound,
    commitment,
    deploy_coordinator,
    raw_cid,
    salt_of,
    update_commitment,
)

GLOBAL_1 = raw_cid(b"global after round 1")
REPORT_1 = raw_cid(b"report of round 1", codec=0x70)
ZERO = b"\x00" * 32


def role(coordinator: Any, name: str) -> bytes:
    return bytes(getattr(coordinator, name)())


def commit(coordinator: Any, client: Any, round_number: int, cid: bytes, num_samples: int) -> Any:
    value = update_commitment(client, round_number, cid, num_samples, salt_of(client, round_number))
    return coordinator.commitUpdate(round_number, value, sender=client)


def reveal(coordinator: Any, client: Any, round_number: int, cid: bytes, num_samples: int) -> Any:
    salt = salt_of(client, round_number)
    return coordinator.revealUpdate(round_number, cid, num_samples, salt, sender=client)


def update_cid(round_number: int, index: int) -> bytes:
    return raw_cid(f"update {round_number} {index}".encode())


def submit_all(coordinator: Any, clients: list[Any], chain: Any, round_number: int = 1) -> None:
    """Each client commits, the commit phase ends (early, or by waiting), each reveals."""
    for i, client in enumerate(clients):
        commit(coordinator, client, round_number, update_cid(round_number, i), 10 + i)
    deadline = coordinator.roundInfo(round_number).deadline
    if chain.pending_timestamp < deadline:
        chain.mine(deltatime=deadline - chain.pending_timestamp)
    for i, client in enumerate(clients):
        reveal(coordinator, client, round_number, update_cid(round_number, i), 10 + i)


def finalize(
    coordinator: Any,
    oracle: Any,
    round_number: int,
    root: bytes,
    rewards: int,
    metric: int = 500_000,
    count: int | None = None,
) -> Any:
    submissions = coordinator.roundInfo(round_number).submissions if count is None else count
    return coordinator.finalizeRound(
        round_number,
        submissions,
        raw_cid(f"global {round_number}".encode()),
        raw_cid(f"report {round_number}".encode()),
        root,
        rewards,
        metric,
        0,
        sender=oracle,
    )


def past_reveal_window(coordinator: Any, chain: Any, round_number: int = 1) -> None:
    info = coordinator.roundInfo(round_number)
    chain.mine(deltatime=max(info.revealDeadline - chain.pending_timestamp, 0) + 1)


# --- deployment -----------------------------------------------------------------------------------
def test_constructor_opens_round_one_from_the_initial_model(
    coordinator: Any, owner: Any, oracle: Any, chain: Any
) -> None:
    receipt = chain.get_receipt(coordinator.txn_hash)
    opened_at = chain.blocks[receipt.block_number].timestamp
    assert coordinator.currentRound() == 1
    assert (coordinator.roundDuration(), coordinator.revealDuration()) == (DURATION, REVEAL)
    assert coordinator.rewardPerRound() == REWARD_PER_ROUND
    assert coordinator.pendingRoundParameters() == (DURATION, REVEAL, REWARD_PER_ROUND)
    assert coordinator.latestGlobalModelCid() == INITIAL_CID
    genesis = coordinator.roundInfo(0)
    assert genesis.globalModelCid == INITIAL_CID and genesis.reportCid == b""
    first = coordinator.roundInfo(1)
    assert (first.deadline, first.revealDeadline, first.pendingReveals) == (
        opened_at + DURATION,
        opened_at + DURATION + REVEAL,
        0,
    )
    assert coordinator.hasRole(role(coordinator, "ORACLE_ROLE"), oracle)
    assert coordinator.hasRole(role(coordinator, "DEFAULT_ADMIN_ROLE"), owner)
    assert not coordinator.hasRole(role(coordinator, "ORACLE_ROLE"), owner)
    assert coordinator.hasRole(role(coordinator, "REGISTRAR_ROLE"), owner)
    assert receipt.events == [
        # ClientAdmission's constructor runs first: the admin is the first registrar.
        coordinator.RoleGranted(role=role(coordinator, "REGISTRAR_ROLE"), account=owner, sender=owner),
        coordinator.RoleGranted(role=role(coordinator, "DEFAULT_ADMIN_ROLE"), account=owner, sender=owner),
        coordinator.RoleGranted(role=role(coordinator, "ORACLE_ROLE"), account=oracle, sender=owner),
        coordinator.RoundParametersUpdated(
            roundDuration=DURATION,
            revealDuration=REVEAL,
            rewardPerRound=REWARD_PER_ROUND,
            effectiveFromRound=1,
        ),
        coordinator.RoundOpened(round=1, deadline=opened_at + DURATION),
    ]


def test_constructor_refuses_zero_durations_and_bad_cid(
    project: Any, owner: Any, oracle: Any, token: Any
) -> None:
    contract = project.FLBCoordinator
    with ape.reverts(contract.CoordinatorInvalidRoundDuration, roundDuration=0):
        owner.deploy(
            contract,
            token,
            owner,
            oracle,
            INITIAL_CID,
            0,
            REVEAL,
            REWARD_PER_ROUND,
            0,
            OPEN_FREE,
            gas=3_000_000,
        )
    with ape.reverts(contract.CoordinatorInvalidRevealDuration, revealDuration=0):
        owner.deploy(
            contract,
            token,
            owner,
            oracle,
            INITIAL_CID,
            DURATION,
            0,
            REWARD_PER_ROUND,
            0,
            OPEN_FREE,
            gas=3_000_000,
        )
    with ape.reverts(contract.CoordinatorInvalidCid, cid=b"\x12\x20" + ZERO):
        owner.deploy(
            contract, token, owner, oracle, b"\x12\x20" + ZERO, 60, 60, 1, 0, OPEN_FREE, gas=3_000_000
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
def test_register_records_the_commitment_bound_to_the_sender(coordinator: Any, clients: list[Any]) -> None:
    client = clients[0]
    expected = bound(client, commitment("a"))
    assert coordinator.boundCommitment(client, commitment("a")) == expected
    receipt = coordinator.register(commitment("a"), sender=client)
    assert receipt.events == [
        coordinator.ClientRegistered(client=client, datasetCommitment=expected, round=1)
    ]
    info = coordinator.clientInfo(client)
    assert (info.registered, info.banned, info.lastSubmittedRound, info.submissions, info.claimed) == (
        True,
        False,
        0,
        0,
        0,
    )
    assert (info.committedRound, info.commitment) == (0, b"\x00" * 20)
    assert info.datasetCommitment == expected
    assert coordinator.ownerOfCommitment(expected) == client
    assert coordinator.activeClients() == 1


def test_register_refuses_duplicates(coordinator: Any, clients: list[Any]) -> None:
    coordinator.register(commitment("a"), sender=clients[0])
    with ape.reverts(coordinator.CoordinatorAlreadyRegistered, client=clients[0]):
        coordinator.register(commitment("b"), sender=clients[0])
    with ape.reverts(coordinator.CoordinatorInvalidCommitment):
        coordinator.register(ZERO, sender=clients[1])
    assert coordinator.activeClients() == 1


def test_a_copied_registration_cannot_block_its_owner(coordinator: Any, clients: list[Any]) -> None:
    victim, copier = clients[0], clients[1]
    # The first build stored the digest itself: a copier who sent the victim's argument first
    # took it (CoordinatorCommitmentTaken) and the victim could never register that dataset.
    coordinator.register(commitment("victim's data"), sender=copier)
    coordinator.register(commitment("victim's data"), sender=victim)
    assert coordinator.clientInfo(victim).datasetCommitment == bound(victim, commitment("victim's data"))
    assert coordinator.ownerOfCommitment(bound(victim, commitment("victim's data"))) == victim
    assert coordinator.ownerOfCommitment(bound(copier, commitment("victim's data"))) == copier


# --- commits ----------------------------------------------------------------------------------------
def test_commit_emits_and_hides_the_cid(coordinator: Any, registered: list[Any]) -> None:
    client = registered[0]
    value = update_commitment(client, 1, raw_cid(b"update"), 42, salt_of(client, 1))
    assert coordinator.computeCommitment(client, 1, raw_cid(b"update"), 42, salt_of(client, 1)) == value
    receipt = coordinator.commitUpdate(1, value, sender=client)
    assert receipt.events == [coordinator.UpdateCommitted(round=1, client=client, commitment=value)]
    info = coordinator.roundInfo(1)
    assert (info.submissions, info.pendingReveals) == (0, 1)
    assert coordinator.hasCommitted(client, 1) and not coordinator.hasSubmitted(client, 1)
    record = coordinator.clientInfo(client)
    assert (record.committedRound, record.commitment, record.submissions) == (1, value[:20], 0)


def test_commit_rules(coordinator: Any, registered: list[Any], outsider: Any, owner: Any, chain: Any) -> None:
    value = update_commitment(registered[0], 1, raw_cid(b"update"), 1, salt_of(registered[0], 1))
    with ape.reverts(coordinator.CoordinatorNotRegistered, client=outsider):
        coordinator.commitUpdate(1, value, sender=outsider)
    with ape.reverts(coordinator.CoordinatorWrongRound, given=2, current=1):
        coordinator.commitUpdate(2, value, sender=registered[0])
    with ape.reverts(coordinator.CoordinatorInvalidCommitment):
        coordinator.commitUpdate(1, ZERO, sender=registered[0])
    coordinator.commitUpdate(1, value, sender=registered[0])
    with ape.reverts(coordinator.CoordinatorAlreadyCommitted, client=registered[0], round=1):
        coordinator.commitUpdate(1, b"\x01" * 32, sender=registered[0])
    coordinator.setClientBanned(registered[1], True, sender=owner)
    with ape.reverts(coordinator.CoordinatorClientBanned, client=registered[1]):
        coordinator.commitUpdate(1, value, sender=registered[1])
    deadline = coordinator.roundInfo(1).deadline
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.CoordinatorRoundClosed, round=1, deadline=deadline):
        coordinator.commitUpdate(1, value, sender=registered[2])


def test_the_last_active_commit_closes_the_commit_phase(
    coordinator: Any, registered: list[Any], clients: list[Any], chain: Any
) -> None:
    commit(coordinator, registered[0], 1, update_cid(1, 0), 10)
    commit(coordinator, registered[1], 1, update_cid(1, 1), 11)
    assert coordinator.roundInfo(1).deadline > chain.pending_timestamp
    receipt = commit(coordinator, registered[2], 1, update_cid(1, 2), 12)
    closed_at = chain.blocks[receipt.block_number].timestamp
    assert receipt.events.filter(coordinator.CommitPhaseClosed) == [
        coordinator.CommitPhaseClosed(round=1, at=closed_at)
    ]
    info = coordinator.roundInfo(1)
    assert (info.deadline, info.revealDeadline, info.pendingReveals) == (closed_at, closed_at + REVEAL, 3)
    coordinator.register(commitment("late"), sender=clients[4])  # a client joining now waits a round
    with ape.reverts(coordinator.CoordinatorRoundClosed, round=1, deadline=closed_at):
        commit(coordinator, clients[4], 1, update_cid(1, 4), 1)


# --- reveals ----------------------------------------------------------------------------------------
def test_reveal_emits_and_counts(coordinator: Any, registered: list[Any], chain: Any) -> None:
    for i, client in enumerate(registered):
        commit(coordinator, client, 1, update_cid(1, i), 10 + i)
    receipt = reveal(coordinator, registered[0], 1, update_cid(1, 0), 10)
    assert receipt.events == [
        coordinator.UpdateSubmitted(round=1, client=registered[0], cid=update_cid(1, 0), numSamples=10)
    ]
    info = coordinator.roundInfo(1)
    assert (info.submissions, info.pendingReveals) == (1, 2)
    assert coordinator.hasSubmitted(registered[0], 1) and not coordinator.hasSubmitted(registered[1], 1)
    record = coordinator.clientInfo(registered[0])
    assert (record.lastSubmittedRound, record.submissions) == (1, 1)


def test_reveal_rules(coordinator: Any, registered: list[Any], clients: list[Any], chain: Any) -> None:
    a, b, c = registered
    cid = update_cid(1, 0)
    commit(coordinator, a, 1, cid, 10)
    deadline = coordinator.roundInfo(1).deadline
    with ape.reverts(coordinator.CoordinatorRevealNotOpen, round=1, opensAt=deadline):
        reveal(coordinator, a, 1, cid, 10)
    commit(coordinator, b, 1, update_cid(1, 1), 11)
    chain.mine(deltatime=DURATION)  # c never commits: the phase ends at its deadline
    with ape.reverts(coordinator.CoordinatorWrongRound, given=2, current=1):
        reveal(coordinator, a, 2, cid, 10)
    with ape.reverts(coordinator.CoordinatorNotCommitted, client=c, round=1):
        reveal(coordinator, c, 1, cid, 10)
    with ape.reverts(coordinator.CoordinatorCommitmentMismatch, client=a, round=1):
        reveal(coordinator, a, 1, cid, 11)  # another sample count than committed
    with ape.reverts(coordinator.CoordinatorCommitmentMismatch, client=a, round=1):
        coordinator.revealUpdate(1, cid, 10, b"\x07" * 32, sender=a)  # another salt
    with ape.reverts(coordinator.CoordinatorInvalidSampleCount, numSamples=0):
        reveal(coordinator, a, 1, cid, 0)
    for bad in (cid[:-1], b"\x01\x71\x12\x20" + cid[4:], b"\x00" + cid[1:], b""):
        with ape.reverts(coordinator.CoordinatorInvalidCid, cid=bad):
            coordinator.revealUpdate(1, bad, 10, salt_of(a, 1), sender=a)
    reveal(coordinator, a, 1, cid, 10)
    with ape.reverts(coordinator.CoordinatorAlreadySubmitted, client=a, round=1):
        reveal(coordinator, a, 1, cid, 10)
    closes_at = coordinator.roundInfo(1).revealDeadline
    past_reveal_window(coordinator, chain)
    with ape.reverts(coordinator.CoordinatorRevealClosed, round=1, closedAt=closes_at):
        reveal(coordinator, b, 1, update_cid(1, 1), 11)


def test_a_copier_cannot_reveal_the_cid_it_saw(coordinator: Any, registered: list[Any], chain: Any) -> None:
    victim, copier, third = registered
    commit(coordinator, victim, 1, update_cid(1, 0), 10)
    commit(coordinator, copier, 1, raw_cid(b"placeholder"), 10)  # it must commit before seeing anything
    commit(coordinator, third, 1, update_cid(1, 2), 12)
    reveal(coordinator, victim, 1, update_cid(1, 0), 10)  # now the CID is public
    with ape.reverts(coordinator.CoordinatorCommitmentMismatch, client=copier, round=1):
        coordinator.revealUpdate(1, update_cid(1, 0), 10, salt_of(copier, 1), sender=copier)


# --- bans and pause -----------------------------------------------------------------------------------
def test_banned_client_cannot_commit_or_reveal_and_is_not_active(
    coordinator: Any, registered: list[Any], owner: Any, outsider: Any, chain: Any
) -> None:
    a, b, c = registered
    commit(coordinator, a, 1, update_cid(1, 0), 10)
    commit(coordinator, b, 1, update_cid(1, 1), 11)
    receipt = coordinator.setClientBanned(a, True, sender=owner)
    assert receipt.events == [coordinator.ClientBanStatusChanged(client=a, banned=True)]
    assert coordinator.activeClients() == 2
    assert coordinator.roundInfo(1).pendingReveals == 1  # a's commitment stops counting
    # c's commit makes every active client committed: the phase closes.
    receipt = commit(coordinator, c, 1, update_cid(1, 2), 12)
    assert len(receipt.events.filter(coordinator.CommitPhaseClosed)) == 1
    with ape.reverts(coordinator.CoordinatorClientBanned, client=a):
        reveal(coordinator, a, 1, update_cid(1, 0), 10)
    coordinator.setClientBanned(a, False, sender=owner)
    assert (coordinator.activeClients(), coordinator.roundInfo(1).pendingReveals) == (3, 3)
    with ape.reverts(coordinator.CoordinatorNotRegistered, client=outsider):
        coordinator.setClientBanned(outsider, True, sender=owner)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "DEFAULT_ADMIN_ROLE"),
    ):
        coordinator.setClientBanned(a, True, sender=outsider)


def test_banning_the_last_pending_client_closes_the_commit_phase(
    coordinator: Any, registered: list[Any], owner: Any, chain: Any
) -> None:
    a, b, c = registered
    commit(coordinator, a, 1, update_cid(1, 0), 10)
    commit(coordinator, b, 1, update_cid(1, 1), 11)
    receipt = coordinator.setClientBanned(c, True, sender=owner)  # c never committed
    closed_at = chain.blocks[receipt.block_number].timestamp
    # Every client still active (a, b) committed: nobody is left to wait for.
    assert receipt.events == [
        coordinator.ClientBanStatusChanged(client=c, banned=True),
        coordinator.CommitPhaseClosed(round=1, at=closed_at),
    ]
    assert coordinator.roundInfo(1).deadline == closed_at


def test_pause_stops_register_commit_reveal_and_claim(
    coordinator: Any, registered: list[Any], owner: Any, clients: list[Any], chain: Any
) -> None:
    commit(coordinator, registered[0], 1, update_cid(1, 0), 10)
    receipt = coordinator.pause(sender=owner)
    assert receipt.events == [coordinator.Paused(account=owner)]
    with ape.reverts(coordinator.EnforcedPause):
        coordinator.register(commitment("late"), sender=clients[4])
    with ape.reverts(coordinator.EnforcedPause):
        commit(coordinator, registered[1], 1, update_cid(1, 1), 1)
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.EnforcedPause):
        reveal(coordinator, registered[0], 1, update_cid(1, 0), 10)
    with ape.reverts(coordinator.EnforcedPause):
        coordinator.claim(1, [], sender=registered[0])
    receipt = coordinator.unpause(sender=owner)
    assert receipt.events == [coordinator.Unpaused(account=owner)]
    reveal(coordinator, registered[0], 1, update_cid(1, 0), 10)


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
        finalize(coordinator, outsider, 1, ZERO, 0)


def test_finalize_waits_for_the_commit_phase_then_every_reveal(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    info = coordinator.roundInfo(1)
    with ape.reverts(
        coordinator.CoordinatorRoundNotDue,
        round=1,
        deadline=info.deadline,
        revealDeadline=info.revealDeadline,
        pendingReveals=0,
    ):
        finalize(coordinator, oracle, 1, ZERO, 0)
    for i, client in enumerate(registered):
        commit(coordinator, client, 1, update_cid(1, i), 10 + i)
    reveal(coordinator, registered[0], 1, update_cid(1, 0), 10)
    reveal(coordinator, registered[1], 1, update_cid(1, 1), 11)
    info = coordinator.roundInfo(1)
    with ape.reverts(
        coordinator.CoordinatorRoundNotDue,
        round=1,
        deadline=info.deadline,
        revealDeadline=info.revealDeadline,
        pendingReveals=1,
    ):
        finalize(coordinator, oracle, 1, ZERO, 0)
    reveal(coordinator, registered[2], 1, update_cid(1, 2), 12)
    finalize(coordinator, oracle, 1, ZERO, 0)  # every commitment revealed: due at once
    assert coordinator.currentRound() == 2


def test_an_unrevealed_commitment_does_not_hold_the_round(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    for i, client in enumerate(registered):
        commit(coordinator, client, 1, update_cid(1, i), 10 + i)
    reveal(coordinator, registered[0], 1, update_cid(1, 0), 10)
    past_reveal_window(coordinator, chain)
    finalize(coordinator, oracle, 1, ZERO, 0)
    assert coordinator.roundInfo(1).submissions == 1  # the two unrevealed commitments earn nothing


def test_finalize_refuses_another_submission_count(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    submit_all(coordinator, registered[:2], chain)
    past_reveal_window(coordinator, chain)
    with ape.reverts(coordinator.CoordinatorSubmissionCountMismatch, round=1, given=1, actual=2):
        finalize(coordinator, oracle, 1, ZERO, 0, count=1)
    finalize(coordinator, oracle, 1, ZERO, 0, count=2)


def test_finalize_after_the_reveal_window_records_everything(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    submit_all(coordinator, registered[:1], chain)
    root = b"\xab" * 32
    receipt = coordinator.finalizeRound(
        1, 1, GLOBAL_1, REPORT_1, root, 700, 612_500, 1_250_000, sender=oracle
    )
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
    assert info.revealDeadline == 0  # known for the open round only
    assert coordinator.latestGlobalModelCid() == GLOBAL_1
    assert coordinator.roundInfo(2).deadline == finalized_at + DURATION
    assert coordinator.rewardTotals() == (FUNDING, 700, 0)


def test_finalize_exactly_once_and_in_order(
    coordinator: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.CoordinatorWrongRound, given=2, current=1):
        finalize(coordinator, oracle, 2, ZERO, 0, count=0)
    finalize(coordinator, oracle, 1, ZERO, 0)
    with ape.reverts(coordinator.CoordinatorRoundAlreadyFinalized, round=1):
        finalize(coordinator, oracle, 1, ZERO, 0)


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
        finalize(coordinator, oracle, 1, ZERO, REWARD_PER_ROUND + 1)
    with ape.reverts(coordinator.CoordinatorPoolUnderfunded, roundRewards=101, available=100):
        finalize(coordinator, oracle, 1, ZERO, 101)
    with ape.reverts(coordinator.CoordinatorMetricOutOfRange, metricPpm=1_000_001):
        finalize(coordinator, oracle, 1, ZERO, 0, metric=1_000_001)
    with ape.reverts(coordinator.CoordinatorInvalidCid, cid=b"\x01"):
        coordinator.finalizeRound(1, 0, b"\x01", REPORT_1, ZERO, 0, 0, 0, sender=oracle)


def test_round_parameters_take_effect_from_the_next_round(
    coordinator: Any, owner: Any, outsider: Any, registered: list[Any], oracle: Any, chain: Any
) -> None:
    receipt = coordinator.setRoundParameters(60, 30, 5, sender=owner)
    assert receipt.events == [
        coordinator.RoundParametersUpdated(
            roundDuration=60, revealDuration=30, rewardPerRound=5, effectiveFromRound=2
        )
    ]
    # The open round keeps what it opened with: a budget the oracle read cannot shrink under it.
    assert (coordinator.roundDuration(), coordinator.revealDuration(), coordinator.rewardPerRound()) == (
        DURATION,
        REVEAL,
        REWARD_PER_ROUND,
    )
    assert coordinator.pendingRoundParameters() == (60, 30, 5)
    with ape.reverts(coordinator.CoordinatorInvalidRoundDuration, roundDuration=0):
        coordinator.setRoundParameters(0, 30, 5, sender=owner)
    with ape.reverts(coordinator.CoordinatorInvalidRevealDuration, revealDuration=0):
        coordinator.setRoundParameters(60, 0, 5, sender=owner)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "DEFAULT_ADMIN_ROLE"),
    ):
        coordinator.setRoundParameters(60, 30, 5, sender=outsider)
    chain.mine(deltatime=DURATION)
    receipt = finalize(coordinator, oracle, 1, ZERO, 6)  # round 1's budget is still the old one
    opened = chain.blocks[receipt.block_number].timestamp
    second = coordinator.roundInfo(2)
    assert (second.deadline, second.revealDeadline) == (opened + 60, opened + 90)
    assert coordinator.rewardPerRound() == 5


def test_oracle_role_can_be_granted_and_revoked(
    coordinator: Any, owner: Any, outsider: Any, chain: Any
) -> None:
    oracle_role = role(coordinator, "ORACLE_ROLE")
    receipt = coordinator.grantRole(oracle_role, outsider, sender=owner)
    assert receipt.events == [coordinator.RoleGranted(role=oracle_role, account=outsider, sender=owner)]
    chain.mine(deltatime=DURATION)
    finalize(coordinator, outsider, 1, ZERO, 0)
    coordinator.revokeRole(oracle_role, outsider, sender=owner)
    chain.mine(deltatime=DURATION)
    with ape.reverts(coordinator.AccessControlUnauthorizedAccount, account=outsider, neededRole=oracle_role):
        finalize(coordinator, outsider, 2, ZERO, 0)


# --- claims -----------------------------------------------------------------------------------------
def test_cumulative_claims(
    coordinator: Any, registered: list[Any], oracle: Any, token: Any, chain: Any
) -> None:
    a, b, c = registered
    submit_all(coordinator, registered, chain)
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

    submit_all(coordinator, registered, chain, round_number=2)
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
