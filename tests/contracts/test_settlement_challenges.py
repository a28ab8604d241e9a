"""FLBSettlement's challenges, with their exact reverts and events: a proposer paying itself is
slashed and its round replaced (and a verifier who attested it without checking), a griefing
challenger is slashed, a replacement makes later proposals stale until proposed again, and a
challenge no quorum decides waits for the admin."""

from __future__ import annotations

from typing import Any

import ape

from tests.contracts.conftest import FUNDING, REWARD_PER_ROUND
from tests.contracts.settlement_setup import (
    CHALLENGE_BOND,
    FINALIZER_BOND,
    PART_GLOBAL_MODEL,
    PART_REPORT,
    PART_REWARDS,
    RESOLUTION,
    SHARE_BPS,
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
    self_paying,
    struct_tuple,
)


# --- challenges ---------------------------------------------------------------------------------------
def test_a_winning_challenge_slashes_the_proposer_and_replaces_the_round(system: System, chain: Any) -> None:
    lazy, v1, v2 = system.verifiers
    challenger, settlement, coordinator = system.challenger, system.settlement, system.coordinator
    due(system, chain)
    bad, good = self_paying(system), honest(system)
    propose(system, 1, bad)
    bad_hash, good_hash = hash_of(1, ZERO, bad), hash_of(1, ZERO, good)
    settlement.attest(1, bad_hash, sender=lazy)  # attests without checking
    assert coordinator.rewardTotals() == (FUNDING, 900 * E, 0)
    receipt = settlement.challenge(
        1, good.fields, PART_GLOBAL_MODEL | PART_REPORT | PART_REWARDS, sender=challenger
    )
    now = chain.blocks[receipt.block_number].timestamp
    (challenged,) = receipt.events.filter(settlement.RoundChallenged)
    assert (challenged.round, challenged.challenger, challenged.resultHash, challenged.parts) == (
        1,
        challenger,
        good_hash,
        7,
    )
    assert (challenged.bond, challenged.resolveBy) == (CHALLENGE_BOND, now + RESOLUTION)
    assert struct_tuple(challenged.alternative) == good.fields
    with ape.reverts(settlement.SettlementChallengeOpen, round=1):
        settlement.challenge(1, honest(system).fields, PART_REWARDS, sender=challenger)
    settlement.attest(1, good_hash, sender=v1)
    before = system.token.balanceOf(challenger)
    receipt = settlement.attest(1, good_hash, sender=v2)
    slashed = FINALIZER_BOND + VERIFIER_BOND
    share = slashed * SHARE_BPS // 10_000
    to_pool = slashed - share
    assert receipt.events.filter(settlement.BondSlashed) == [
        settlement.BondSlashed(account=system.finalizer, round=1, amount=FINALIZER_BOND),
        settlement.BondSlashed(account=lazy, round=1, amount=VERIFIER_BOND),
    ]
    assert receipt.events.filter(settlement.ChallengeResolved) == [
        settlement.ChallengeResolved(
            round=1,
            challengerWon=True,
            resultHash=good_hash,
            slashed=slashed,
            winnerShare=share,
            toPool=to_pool,
            byAdmin=False,
        )
    ]
    assert receipt.events.filter(coordinator.RewardsFunded) == [
        coordinator.RewardsFunded(funder=settlement, amount=to_pool, totalFunded=FUNDING + to_pool)
    ]
    (replaced,) = receipt.events.filter(coordinator.RoundReplaced)
    assert (replaced.round, struct_tuple(replaced.result), replaced.previousRewards) == (
        1,
        good.fields,
        900 * E,
    )
    global_cid, _, root = good.fields[:3]
    assert receipt.events.filter(settlement.RoundSettled) == [
        settlement.RoundSettled(round=1, resultHash=good_hash)
    ]
    assert system.token.balanceOf(challenger) - before == share + CHALLENGE_BOND
    assert settlement.bondInfo(system.finalizer).amount == 0 and settlement.bondInfo(lazy).amount == 0
    # The pool: the slash's rest came in, and the replacement gave back what the bad tree over-allocated.
    assert coordinator.rewardTotals() == (FUNDING + to_pool, 600 * E, 0)
    info = coordinator.roundInfo(1)
    assert (info.globalModelCid, info.rewardsRoot, info.confirmed) == (global_cid, root, True)
    with ape.reverts(coordinator.CoordinatorInvalidProof, client=system.finalizer, cumulativeAmount=900 * E):
        claim(system, system.finalizer, bad.tree)
    for client, amount in zip(system.clients, (300 * E, 200 * E, 100 * E), strict=True):
        claim(system, client, good.tree)
        assert system.token.balanceOf(client) == amount
    assert coordinator.rewardTotals() == (FUNDING + to_pool, 600 * E, 600 * E)
    # A slashed finalizer cannot propose the next round until it bonds again.
    due(system, chain, 2)
    with ape.reverts(
        settlement.SettlementBondTooLow, account=system.finalizer, bond=0, minimum=FINALIZER_BOND
    ):
        propose(system, 2, honest(system, 2))


def test_a_losing_challenge_slashes_the_challenger(system: System, chain: Any) -> None:
    v0, v1, v2 = system.verifiers
    settlement, challenger = system.settlement, system.challenger
    due(system, chain)
    result = honest(system)
    propose(system, 1, result)
    griefing = make_result(1, {challenger.address: 600 * E}, 600 * E, tag="griefing")
    settlement.challenge(1, griefing.fields, PART_REWARDS, sender=challenger)
    griefing_hash, good_hash = hash_of(1, ZERO, griefing), hash_of(1, ZERO, result)
    settlement.attest(1, griefing_hash, sender=v0)  # one verifier sides with the challenger
    with ape.reverts(settlement.SettlementChallengeOpen, round=1):
        chain.mine(deltatime=WINDOW)
        settlement.finalize(1, sender=challenger)
    settlement.attest(1, good_hash, sender=v1)
    before = system.token.balanceOf(system.finalizer)
    receipt = settlement.attest(1, good_hash, sender=v2)
    slashed = CHALLENGE_BOND + VERIFIER_BOND
    share = slashed * SHARE_BPS // 10_000
    assert receipt.events.filter(settlement.BondSlashed) == [
        settlement.BondSlashed(account=challenger, round=1, amount=CHALLENGE_BOND),
        settlement.BondSlashed(account=v0, round=1, amount=VERIFIER_BOND),
    ]
    assert receipt.events.filter(settlement.ChallengeResolved) == [
        settlement.ChallengeResolved(
            round=1,
            challengerWon=False,
            resultHash=good_hash,
            slashed=slashed,
            winnerShare=share,
            toPool=slashed - share,
            byAdmin=False,
        )
    ]
    assert not receipt.events.filter(system.coordinator.RoundReplaced)
    assert system.token.balanceOf(system.finalizer) - before == share
    assert system.coordinator.rewardTotals() == (FUNDING + slashed - share, 600 * E, 0)
    assert settlement.finalRound() == 1
    assert not settlement.challengeInfo(1).open


def test_challenge_rules(system: System, chain: Any) -> None:
    settlement, challenger = system.settlement, system.challenger
    due(system, chain)
    result, other = honest(system), self_paying(system)
    with ape.reverts(settlement.SettlementRoundNotProposed, round=1):
        settlement.challenge(1, other.fields, PART_REWARDS, sender=challenger)
    propose(system, 1, result)
    same = hash_of(1, ZERO, result)
    with ape.reverts(settlement.SettlementNothingChallenged, round=1, resultHash=same, parts=PART_REWARDS):
        settlement.challenge(1, result.fields, PART_REWARDS, sender=challenger)
    other_hash = hash_of(1, ZERO, other)
    for parts in (0, 16):
        with ape.reverts(settlement.SettlementNothingChallenged, round=1, resultHash=other_hash, parts=parts):
            settlement.challenge(1, other.fields, parts, sender=challenger)
    broken = (b"\x01\x71" + other.fields[0][2:], b"", other.fields[2], REWARD_PER_ROUND + 1, 1_000_001, 0)
    with ape.reverts(settlement.SettlementInvalidAlternative, round=1, invalidParts=15):
        settlement.challenge(1, broken, 15, sender=challenger)
    window_end = settlement.proposalInfo(1).windowEnd
    chain.mine(deltatime=WINDOW)
    with ape.reverts(settlement.SettlementChallengeWindowClosed, round=1, windowEnd=window_end):
        settlement.challenge(1, other.fields, PART_REWARDS, sender=challenger)


def test_a_replacement_makes_later_proposals_stale_until_proposed_again(
    system: System, chain: Any, outsider: Any
) -> None:
    v0, v1, v2 = system.verifiers
    settlement, coordinator = system.settlement, system.coordinator
    due(system, chain, 1)
    bad, good = self_paying(system, 1), honest(system, 1)
    propose(system, 1, bad)
    due(system, chain, 2)
    on_bad = make_result(2, {system.finalizer.address: 1_800 * E}, 900 * E, tag="on bad")
    propose(system, 2, on_bad)  # built on the bad round 1
    on_bad_hash = hash_of(2, hash_of(1, ZERO, bad), on_bad)
    settlement.attest(2, on_bad_hash, sender=v2)
    settlement.challenge(1, good.fields, PART_REWARDS, sender=system.challenger)
    settlement.challenge(2, honest(system, 2).fields, PART_REWARDS, sender=system.challenger)
    good_hash = hash_of(1, ZERO, good)
    for verifier in (v0, v1):
        settlement.attest(1, good_hash, sender=verifier)
    with ape.reverts(
        settlement.SettlementStaleProposal,
        round=2,
        parentHash=hash_of(1, ZERO, bad),
        currentParentHash=good_hash,
    ):
        settlement.attest(2, on_bad_hash, sender=v0)
    assert settlement.proposalInfo(2).stale
    # The finalizer bonds again and proposes round 2 on the replaced round 1; round 2's open
    # challenge ends without a decision and its challenger is refunded.
    give(system, system.finalizer, FINALIZER_BOND, settlement)
    settlement.depositBond(FINALIZER_BOND, sender=system.finalizer)
    before = system.token.balanceOf(system.challenger)
    second = honest(system, 2)
    receipt = propose(system, 2, second)
    assert receipt.events.filter(settlement.ChallengeCancelled) == [
        settlement.ChallengeCancelled(round=2, challenger=system.challenger, refunded=CHALLENGE_BOND)
    ]
    replaced = receipt.events.filter(coordinator.RoundReplaced)
    assert [(r.round, struct_tuple(r.result), r.previousRewards) for r in replaced] == [
        (2, second.fields, 900 * E)
    ]
    assert system.token.balanceOf(system.challenger) - before == CHALLENGE_BOND
    second_hash = hash_of(2, good_hash, second)
    assert receipt.events.filter(settlement.RoundProposed)[0].resultHash == second_hash
    # v2's attestation of the stale proposal does not carry over: the new one needs its own votes.
    assert settlement.proposalInfo(2).attestations == 0
    for verifier in (v0, v1):
        settlement.attest(2, second_hash, sender=verifier)
    assert coordinator.latestConfirmedRound() == 2
    assert coordinator.rewardTotals()[1] == 1_200 * E
    claim(system, system.clients[0], second.tree)
    assert system.token.balanceOf(system.clients[0]) == 600 * E
    with ape.reverts(settlement.SettlementAlreadyProposed, round=2):
        propose(system, 2, second)


def test_a_stalled_challenge_waits_for_the_admin(system: System, chain: Any, outsider: Any) -> None:
    v0, v1, _ = system.verifiers
    settlement = system.settlement
    due(system, chain)
    bad, good = self_paying(system), honest(system)
    propose(system, 1, bad)
    settlement.challenge(1, good.fields, PART_REWARDS, sender=system.challenger)
    settlement.attest(1, hash_of(1, ZERO, bad), sender=v0)
    settlement.attest(1, hash_of(1, ZERO, good), sender=v1)  # one vote each: no quorum
    resolve_by = settlement.challengeInfo(1).resolveBy
    with ape.reverts(settlement.SettlementResolutionPending, round=1, resolveBy=resolve_by):
        settlement.resolveStalled(1, True, sender=system.owner)
    chain.mine(deltatime=RESOLUTION)
    with ape.reverts(settlement.SettlementChallengeOpen, round=1):
        settlement.finalize(1, sender=outsider)  # fails safe: the round stays unfinal
    with ape.reverts(
        settlement.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(settlement, "DEFAULT_ADMIN_ROLE"),
    ):
        settlement.resolveStalled(1, True, sender=outsider)
    receipt = settlement.resolveStalled(1, True, sender=system.owner)
    resolved = receipt.events.filter(settlement.ChallengeResolved)[0]
    assert (resolved.challengerWon, resolved.byAdmin, resolved.slashed) == (
        True,
        True,
        FINALIZER_BOND + VERIFIER_BOND,
    )
    assert system.coordinator.latestConfirmedRound() == 1
    with ape.reverts(settlement.SettlementNoOpenChallenge, round=1):
        settlement.resolveStalled(1, True, sender=system.owner)
