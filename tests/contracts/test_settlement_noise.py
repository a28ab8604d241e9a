"""The finalizer's DP noise commitment: once per round, for the open round only, before its
commit phase ends; every revert with its arguments and the event."""

from __future__ import annotations

from typing import Any

import ape
from eth_utils import keccak

from tests.contracts.settlement_setup import ZERO, System, due, honest, propose, role

COMMITMENT = keccak(b"secret of round 1")


def test_commit_noise_rules(system: System, chain: Any, outsider: Any) -> None:
    settlement, finalizer = system.settlement, system.finalizer
    deadline = system.coordinator.roundInfo(1).deadline
    assert system.coordinator.openRoundDeadline() == (1, deadline)
    assert settlement.noiseCommitment(1) == ZERO
    with ape.reverts(
        settlement.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=role(settlement, "FINALIZER_ROLE"),
    ):
        settlement.commitNoise(1, COMMITMENT, sender=outsider)
    with ape.reverts(settlement.SettlementInvalidNoiseCommitment):
        settlement.commitNoise(1, ZERO, sender=finalizer)
    with ape.reverts(settlement.SettlementNoiseCommitClosed, round=2, openRound=1, deadline=deadline):
        settlement.commitNoise(2, COMMITMENT, sender=finalizer)
    receipt = settlement.commitNoise(1, COMMITMENT, sender=finalizer)
    assert receipt.events.filter(settlement.NoiseCommitted) == [
        settlement.NoiseCommitted(round=1, finalizer=finalizer, commitment=COMMITMENT)
    ]
    assert settlement.noiseCommitment(1) == COMMITMENT
    with ape.reverts(settlement.SettlementNoiseAlreadyCommitted, round=1, commitment=COMMITMENT):
        settlement.commitNoise(1, keccak(b"another secret"), sender=finalizer)


def test_no_commitment_once_the_commit_phase_ended(system: System, chain: Any) -> None:
    settlement, finalizer = system.settlement, system.finalizer
    # Every client committed: the commit phase closed early, at the last commit's block.
    due(system, chain)
    closed = system.coordinator.roundInfo(1).deadline
    with ape.reverts(settlement.SettlementNoiseCommitClosed, round=1, openRound=1, deadline=closed):
        settlement.commitNoise(1, COMMITMENT, sender=finalizer)
    propose(system, 1, honest(system))
    second = system.coordinator.roundInfo(2).deadline
    settlement.commitNoise(2, COMMITMENT, sender=finalizer)  # the next round is open at once
    assert settlement.noiseCommitment(2) == COMMITMENT
    chain.mine(deltatime=second - chain.pending_timestamp + 1)
    with ape.reverts(settlement.SettlementNoiseCommitClosed, round=2, openRound=2, deadline=second):
        settlement.commitNoise(2, keccak(b"late"), sender=finalizer)
