"""FLBSettlement and the coordinator's settlement hooks: wiring, proposals, attestations, finality,
bonds and exits, each rule with its exact revert and its events (challenges:
test_settlement_challenges.py)."""

from __future__ import annotations

from typing import Any

import ape

from tests.contracts.conftest import REWARD_PER_ROUND, deploy_coordinator
from tests.contracts.settlement_setup import (
    EXIT_DELAY,
    FINALIZER_BOND,
    PARAMETERS,
    PART_REWARDS,
    VERIFIER_BOND,
    WINDOW,
    ZERO,
    E,
    System,
    claim,
    due,
    give,
    hash_of,
    honest,
    make_result,
    propose,
    role,
    struct_tuple,
)


# --- wiring -----------------------------------------------------------------------------------------
def test_set_settlement_once_and_only_by_the_admin(
    project: Any, owner: Any, oracle: Any, token: Any, outsider: Any
) -> None:
    coordinator = deploy_coordinator(project, owner, oracle, token)
    settlement = owner.deploy(project.FLBSettlement, coordinator, owner, PARAMETERS)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(coordinator, "DEFAULT_ADMIN_ROLE"),
    ):
        coordinator.setSettlement(settlement, sender=outsider)
    zero = "0x" + "00" * 20
    with ape.reverts(coordinator.CoordinatorInvalidSettlement, given=zero, current=zero):
        coordinator.setSettlement(zero, sender=owner)
    assert coordinator.latestConfirmedRound() == 0
    receipt = coordinator.setSettlement(settlement, sender=owner)
    assert receipt.events == [
        coordinator.RoleGranted(role=role(coordinator, "SETTLEMENT_ROLE"), account=settlement, sender=owner),
        coordinator.SettlementSet(settlement=settlement, latestConfirmedRound=0),
    ]
    assert coordinator.settlement() == settlement
    with ape.reverts(coordinator.CoordinatorInvalidSettlement, given=outsider, current=settlement):
        coordinator.setSettlement(outsider, sender=owner)


def test_parameters_are_checked(project: Any, owner: Any, oracle: Any, token: Any) -> None:
    coordinator = deploy_coordinator(project, owner, oracle, token)
    for index, bad in ((0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (6, 0), (6, 65), (7, 10_001)):
        parameters = list(PARAMETERS)
        parameters[index] = bad
        with ape.reverts(project.FLBSettlement.SettlementInvalidParameters):
            owner.deploy(project.FLBSettlement, coordinator, owner, tuple(parameters), gas=5_000_000)


def test_the_oracle_cannot_bypass_the_settlement(system: System, chain: Any) -> None:
    due(system, chain)
    fields = honest(system).fields
    with ape.reverts(
        system.coordinator.AccessControlUnauthorizedAccount,
        account=system.finalizer,
        neededRole=role(system.coordinator, "SETTLEMENT_ROLE"),
    ):
        system.coordinator.finalizeRound(1, 3, *fields, sender=system.finalizer)
    with ape.reverts(
        system.coordinator.AccessControlUnauthorizedAccount,
        account=system.finalizer,
        neededRole=role(system.coordinator, "SETTLEMENT_ROLE"),
    ):
        system.coordinator.confirmRound(1, sender=system.finalizer)


# --- propose ----------------------------------------------------------------------------------------
def test_propose_finalizes_on_the_coordinator_and_opens_the_next_round(system: System, chain: Any) -> None:
    due(system, chain)
    result = honest(system)
    expected = hash_of(1, ZERO, result)
    assert system.settlement.resultHashOf(1, ZERO, result.fields) == expected
    receipt = propose(system, 1, result)
    now = chain.blocks[receipt.block_number].timestamp
    assert receipt.events.filter(system.settlement.RoundProposed) == [
        system.settlement.RoundProposed(
            round=1, proposer=system.finalizer, resultHash=expected, parentHash=ZERO, windowEnd=now + WINDOW
        )
    ]
    assert len(receipt.events.filter(system.coordinator.RoundFinalized)) == 1
    assert system.coordinator.currentRound() == 2  # training does not wait for the settlement
    info = system.settlement.proposalInfo(1)
    assert (info.proposer, info.windowEnd, info.decided, info.isFinal, info.stale) == (
        system.finalizer,
        now + WINDOW,
        False,
        False,
        False,
    )
    assert (info.resultHash, info.roundRewards, info.attestations) == (expected, 600 * E, 0)
    assert system.coordinator.latestConfirmedRound() == 0
    assert not system.coordinator.roundInfo(1).confirmed
    assert system.settlement.bondInfo(system.finalizer).lockedUntilRound == 1


def test_propose_needs_the_role_a_bond_and_a_fresh_round(
    system: System, accounts: Any, chain: Any, outsider: Any
) -> None:
    due(system, chain)
    result = honest(system)
    with ape.reverts(
        system.settlement.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(system.settlement, "FINALIZER_ROLE"),
    ):
        system.settlement.propose(1, 3, result.fields, sender=outsider)
    unbonded = accounts[9]
    system.settlement.grantRole(role(system.settlement, "FINALIZER_ROLE"), unbonded, sender=system.owner)
    with ape.reverts(
        system.settlement.SettlementBondTooLow, account=unbonded, bond=0, minimum=FINALIZER_BOND
    ):
        system.settlement.propose(1, 3, result.fields, sender=unbonded)
    with ape.reverts(system.coordinator.CoordinatorSubmissionCountMismatch, round=1, given=2, actual=3):
        system.settlement.propose(1, 2, result.fields, sender=system.finalizer)
    propose(system, 1, result)
    with ape.reverts(system.settlement.SettlementAlreadyProposed, round=1):
        propose(system, 1, result)


# --- attest -----------------------------------------------------------------------------------------
def test_attest_rules(system: System, chain: Any, outsider: Any) -> None:
    v0, v1, _ = system.verifiers
    due(system, chain)
    result = honest(system)
    good = hash_of(1, ZERO, result)
    with ape.reverts(system.settlement.SettlementRoundNotProposed, round=1):
        system.settlement.attest(1, good, sender=v0)
    propose(system, 1, result)
    with ape.reverts(system.settlement.SettlementNotVerifier, account=outsider):
        system.settlement.attest(1, good, sender=outsider)
    wrong = b"\x01" * 32
    with ape.reverts(system.settlement.SettlementUnknownResult, round=1, resultHash=wrong, proposalHash=good):
        system.settlement.attest(1, wrong, sender=v0)
    receipt = system.settlement.attest(1, good, sender=v0)
    assert receipt.events == [
        system.settlement.ResultAttested(round=1, verifier=v0, resultHash=good, votes=1)
    ]
    with ape.reverts(system.settlement.SettlementAlreadyAttested, round=1, verifier=v0):
        system.settlement.attest(1, good, sender=v0)
    assert system.settlement.proposalInfo(1).attestations == 1
    assert system.settlement.bondInfo(v0).lockedUntilRound == 1
    # A verifier whose role was revoked no longer counts.
    system.settlement.revokeRole(role(system.settlement, "VERIFIER_ROLE"), v1, sender=system.owner)
    with ape.reverts(system.settlement.SettlementNotVerifier, account=v1):
        system.settlement.attest(1, good, sender=v1)


def test_the_proposer_cannot_attest_its_own_proposal(system: System, chain: Any) -> None:
    finalizer = system.finalizer
    system.settlement.grantRole(role(system.settlement, "VERIFIER_ROLE"), finalizer, sender=system.owner)
    give(system, finalizer, VERIFIER_BOND, system.settlement)
    system.settlement.registerVerifier(0, sender=finalizer)  # its finalizer bond covers the minimum
    due(system, chain)
    result = honest(system)
    propose(system, 1, result)
    with ape.reverts(system.settlement.SettlementProposerCannotAttest, round=1, account=finalizer):
        system.settlement.attest(1, hash_of(1, ZERO, result), sender=finalizer)


# --- finality -----------------------------------------------------------------------------------------
def test_finalize_after_the_window_confirms_and_claims_pay(system: System, chain: Any, outsider: Any) -> None:
    due(system, chain)
    result = honest(system)
    propose(system, 1, result)
    window_end = system.settlement.proposalInfo(1).windowEnd
    with ape.reverts(system.settlement.SettlementChallengeWindowOpen, round=1, windowEnd=window_end):
        system.settlement.finalize(1, sender=outsider)
    a = system.clients[0]
    # Round 1 is finalized on the coordinator but not confirmed: claims still check round 0's root.
    with ape.reverts(system.coordinator.CoordinatorInvalidProof, client=a, cumulativeAmount=300 * E):
        claim(system, a, result.tree)
    chain.mine(deltatime=WINDOW)
    receipt = system.settlement.finalize(1, sender=outsider)
    good = hash_of(1, ZERO, result)
    assert receipt.events == [
        system.settlement.RoundSettled(round=1, resultHash=good),
        system.coordinator.RoundConfirmed(round=1, rewardsRoot=result.tree.root),
    ]
    assert system.coordinator.latestConfirmedRound() == 1 and system.coordinator.roundInfo(1).confirmed
    assert system.settlement.finalRound() == 1 and system.settlement.proposalInfo(1).isFinal
    claim(system, a, result.tree)
    assert system.token.balanceOf(a) == 300 * E
    with ape.reverts(system.settlement.SettlementAlreadyFinal, round=1):
        system.settlement.finalize(1, sender=outsider)
    with ape.reverts(system.settlement.SettlementRoundNotProposed, round=2):
        system.settlement.finalize(2, sender=outsider)


def test_a_quorum_of_attestations_finalizes_at_once(system: System, chain: Any) -> None:
    v0, v1, _ = system.verifiers
    due(system, chain)
    result = honest(system)
    propose(system, 1, result)
    good = hash_of(1, ZERO, result)
    system.settlement.attest(1, good, sender=v0)
    receipt = system.settlement.attest(1, good, sender=v1)
    assert receipt.events == [
        system.settlement.ResultAttested(round=1, verifier=v1, resultHash=good, votes=2),
        system.settlement.RoundDecided(round=1, resultHash=good),
        system.settlement.RoundSettled(round=1, resultHash=good),
        system.coordinator.RoundConfirmed(round=1, rewardsRoot=result.tree.root),
    ]
    claim(system, system.clients[1], result.tree)
    assert system.token.balanceOf(system.clients[1]) == 200 * E


def test_rounds_become_final_in_order(system: System, chain: Any, outsider: Any) -> None:
    v0, v1, _ = system.verifiers
    due(system, chain, 1)
    first = honest(system, 1)
    propose(system, 1, first)
    due(system, chain, 2)
    second = honest(system, 2)
    parent = hash_of(1, ZERO, first)
    receipt = propose(system, 2, second)
    assert receipt.events.filter(system.settlement.RoundProposed)[0].parentHash == parent
    for verifier in (v0, v1):  # round 2 is decided, but round 1 is not final yet
        system.settlement.attest(2, hash_of(2, parent, second), sender=verifier)
    assert system.settlement.proposalInfo(2).decided and not system.settlement.proposalInfo(2).isFinal
    with ape.reverts(system.settlement.SettlementRoundsOutOfOrder, round=2, nextRound=1):
        system.settlement.finalize(2, sender=outsider)
    chain.mine(deltatime=WINDOW)
    system.settlement.finalize(1, sender=outsider)
    system.settlement.finalize(2, sender=outsider)  # decided: no window to wait for
    assert system.coordinator.latestConfirmedRound() == 2
    claim(system, system.clients[0], second.tree)
    assert system.token.balanceOf(system.clients[0]) == 600 * E


# --- bonds --------------------------------------------------------------------------------------------
def test_verifier_registration_rules(system: System, accounts: Any, outsider: Any) -> None:
    settlement = system.settlement
    with ape.reverts(
        settlement.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(settlement, "VERIFIER_ROLE"),
    ):
        settlement.registerVerifier(VERIFIER_BOND, sender=outsider)
    v0 = system.verifiers[0]
    with ape.reverts(settlement.SettlementAlreadyVerifier, account=v0):
        settlement.registerVerifier(0, sender=v0)
    newcomer = accounts[9]
    settlement.grantRole(role(settlement, "VERIFIER_ROLE"), newcomer, sender=system.owner)
    with ape.reverts(settlement.SettlementBondTooLow, account=newcomer, bond=5, minimum=VERIFIER_BOND):
        settlement.registerVerifier(5, sender=newcomer)
    give(system, newcomer, VERIFIER_BOND, settlement)
    receipt = settlement.registerVerifier(VERIFIER_BOND, sender=newcomer)
    assert receipt.events.filter(settlement.VerifierRegistered) == [
        settlement.VerifierRegistered(verifier=newcomer, index=3)
    ]
    assert receipt.events.filter(settlement.BondDeposited) == [
        settlement.BondDeposited(account=newcomer, amount=VERIFIER_BOND, bond=VERIFIER_BOND)
    ]
    assert settlement.verifierCount() == 4 and settlement.verifierAt(3) == newcomer
    with ape.reverts(settlement.SettlementZeroAmount):
        settlement.depositBond(0, sender=newcomer)


def test_a_verifier_cannot_leave_before_the_delay_nor_while_its_vote_is_pending(
    system: System, chain: Any
) -> None:
    v0, v1, v2 = system.verifiers
    settlement = system.settlement
    with ape.reverts(settlement.SettlementExitNotRequested, account=v0):
        settlement.withdrawBond(sender=v0)
    due(system, chain)
    result = honest(system)
    propose(system, 1, result)
    griefing = make_result(1, {system.challenger.address: 600 * E}, 600 * E, tag="griefing")
    settlement.challenge(1, griefing.fields, PART_REWARDS, sender=system.challenger)
    settlement.attest(1, hash_of(1, ZERO, griefing), sender=v0)  # votes for the wrong side, then runs
    receipt = settlement.requestExit(sender=v0)
    available_at = chain.blocks[receipt.block_number].timestamp + EXIT_DELAY
    assert receipt.events == [settlement.ExitRequested(account=v0, availableAt=available_at)]
    with ape.reverts(settlement.SettlementExiting, account=v0):
        settlement.requestExit(sender=v0)
    with ape.reverts(settlement.SettlementExitDelayRunning, account=v0, availableAt=available_at):
        settlement.withdrawBond(sender=v0)
    chain.mine(deltatime=EXIT_DELAY)
    with ape.reverts(settlement.SettlementBondLocked, account=v0, lockedUntilRound=1, finalRound=0):
        settlement.withdrawBond(sender=v0)
    good = hash_of(1, ZERO, result)
    settlement.attest(1, good, sender=v1)
    settlement.attest(1, good, sender=v2)  # the challenge loses: v0 is slashed before it can leave
    receipt = settlement.withdrawBond(sender=v0)
    assert receipt.events == [settlement.BondWithdrawn(account=v0, amount=0)]
    assert system.token.balanceOf(v0) == 0
    assert not settlement.bondInfo(v0).verifier and settlement.verifierAt(0) == "0x" + "00" * 20
    # An honest verifier leaves with its whole bond.
    settlement.requestExit(sender=v1)
    chain.mine(deltatime=EXIT_DELAY)
    with ape.reverts(settlement.SettlementExiting, account=v1):
        settlement.attest(1, good, sender=v1)
    receipt = settlement.withdrawBond(sender=v1)
    assert receipt.events.filter(settlement.BondWithdrawn) == [
        settlement.BondWithdrawn(account=v1, amount=VERIFIER_BOND)
    ]
    assert system.token.balanceOf(v1) == VERIFIER_BOND


# --- coordinator hooks ----------------------------------------------------------------------------------
def test_confirm_and_replace_only_the_pending_rounds(
    project: Any, owner: Any, oracle: Any, token: Any, accounts: Any, chain: Any
) -> None:
    """The coordinator's own checks, with an account standing in for the settlement (which never
    breaks them)."""
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=700 * E)
    hook = accounts[9]
    coordinator.setSettlement(hook, sender=owner)
    chain.mine(deltatime=3_600)
    result = make_result(1, {accounts[2].address: 600 * E}, 600 * E)
    coordinator.finalizeRound(1, 0, *result.fields, sender=hook)
    assert coordinator.latestConfirmedRound() == 0 and not coordinator.roundInfo(1).confirmed
    with ape.reverts(coordinator.CoordinatorRoundNotPending, round=2, latestConfirmed=0, currentRound=2):
        coordinator.confirmRound(2, sender=hook)
    too_much = (*result.fields[:3], REWARD_PER_ROUND + 1, 0, 0)
    with ape.reverts(
        coordinator.CoordinatorRewardsExceedBudget,
        roundRewards=REWARD_PER_ROUND + 1,
        rewardPerRound=REWARD_PER_ROUND,
    ):
        coordinator.replaceRound(1, too_much, 600 * E, sender=hook)
    more = (*result.fields[:3], 800 * E, 0, 0)  # 200 more than before, 100 unallocated
    with ape.reverts(coordinator.CoordinatorPoolUnderfunded, roundRewards=200 * E, available=100 * E):
        coordinator.replaceRound(1, more, 600 * E, sender=hook)
    with ape.reverts(coordinator.CoordinatorMetricOutOfRange, metricPpm=1_000_001):
        coordinator.replaceRound(1, (*result.fields[:4], 1_000_001, 0), 600 * E, sender=hook)
    less = make_result(1, {accounts[2].address: 250 * E}, 250 * E, tag="less")
    receipt = coordinator.replaceRound(1, less.fields, 600 * E, sender=hook)
    assert [struct_tuple(log.result) for log in receipt.events.filter(coordinator.RoundReplaced)] == [
        less.fields
    ]
    assert coordinator.rewardTotals() == (700 * E, 250 * E, 0)
    assert coordinator.roundInfo(1).rewardsRoot == less.tree.root
    receipt = coordinator.confirmRound(1, sender=hook)
    assert receipt.events == [coordinator.RoundConfirmed(round=1, rewardsRoot=less.tree.root)]
    with ape.reverts(coordinator.CoordinatorRoundNotPending, round=1, latestConfirmed=1, currentRound=2):
        coordinator.replaceRound(1, result.fields, 250 * E, sender=hook)
    claim_amount, proof = less.tree.amounts[accounts[2].address], less.tree.proofs[accounts[2].address]
    coordinator.claim(claim_amount, proof, sender=accounts[2])
    assert coordinator.rewardTotals() == (700 * E, 250 * E, 250 * E)


def test_without_a_settlement_every_finalized_round_is_confirmed(
    coordinator: Any, oracle: Any, chain: Any
) -> None:
    chain.mine(deltatime=3_600)
    result = make_result(1, {}, 0)
    receipt = coordinator.finalizeRound(1, 0, *result.fields, sender=oracle)
    assert not receipt.events.filter(coordinator.RoundConfirmed)  # RoundFinalized says it all
    assert coordinator.latestConfirmedRound() == 1 and coordinator.roundInfo(1).confirmed
    assert coordinator.settlement() == "0x" + "00" * 20
