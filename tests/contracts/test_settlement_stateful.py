"""Hypothesis drives random sequences of proposals (honest or self-paying), attestations for either
side, challenges (right or griefing), time passing, finalizations, stalled resolutions, re-proposals
of stale rounds, exits and claims (against any tree, confirmed or not) through FLBSettlement, and
checks after every step that the books balance and that no claim ever paid an unconfirmed round.

Exact reverts are tests/contracts/test_settlement.py's job; here a refused step is just skipped.
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from ape.exceptions import ContractLogicError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from flb_dapp.merkle import RewardsTree, build_rewards_tree
from tests.contracts.conftest import DURATION, SUPPLY, deploy_coordinator, raw_cid
from tests.contracts.settlement_setup import (
    CHALLENGE_BOND,
    FINALIZER_BOND,
    PARAMETERS,
    PART_REWARDS,
    VERIFIER_BOND,
    WINDOW,
    E,
    hash_fields,
)

FUNDING = 1_000 * E
PER_ROUND = (10 * E, 5 * E)  # what an honest round pays each claimant


class SettlementMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        accounts = ape.accounts.test_accounts
        self.accounts = [accounts[i] for i in range(10)]
        self.owner, self.finalizer = accounts[0], accounts[1]
        self.claimants = [accounts[2], accounts[3]]
        self.verifiers = [accounts[4], accounts[5], accounts[6]]
        self.challenger = accounts[7]
        self.token = self.owner.deploy(ape.project.FLBRewardToken, self.owner, SUPPLY)
        self.coordinator = deploy_coordinator(ape.project, self.owner, self.finalizer, self.token, FUNDING)
        self.settlement = self.owner.deploy(
            ape.project.FLBSettlement, self.coordinator, self.owner, PARAMETERS
        )
        self.coordinator.setSettlement(self.settlement, sender=self.owner)
        self.settlement.grantRole(self.settlement.FINALIZER_ROLE(), self.finalizer, sender=self.owner)
        for account in [self.finalizer, self.challenger, *self.verifiers]:
            self.token.transfer(account, 20 * FINALIZER_BOND, sender=self.owner)
            self.token.approve(self.settlement, 2**256 - 1, sender=account)
        for verifier in self.verifiers:
            self.settlement.grantRole(self.settlement.VERIFIER_ROLE(), verifier, sender=self.owner)
            self.settlement.registerVerifier(VERIFIER_BOND, sender=verifier)
        self.trees: dict[bytes, RewardsTree] = {}
        self.honest_results: dict[int, tuple[Any, ...]] = {}
        self.confirmed_roots: set[bytes] = {b"\x00" * 32}
        self.funded = FUNDING

    # --- helpers ---------------------------------------------------------------------------------
    def _result(self, round_number: int, honest: bool) -> tuple[Any, ...]:
        c0, c1 = (c.address for c in self.claimants)
        cumulative = {c0: PER_ROUND[0] * round_number, c1: PER_ROUND[1] * round_number}
        if not honest:  # the finalizer takes the round's rewards for itself
            cumulative = {c0: PER_ROUND[0] * (round_number - 1), c1: PER_ROUND[1] * (round_number - 1)}
            cumulative = {k: v for k, v in cumulative.items() if v} | {self.finalizer.address: sum(PER_ROUND)}
        tree = build_rewards_tree(cumulative)
        self.trees[bytes(tree.root)] = tree
        tag = "honest" if honest else "self-paying"
        fields = (
            raw_cid(f"g{round_number} {tag}".encode()),
            raw_cid(f"r{round_number} {tag}".encode()),
            tree.root,
            sum(PER_ROUND),
            500_000,
            0,
        )
        if honest:
            self.honest_results[round_number] = fields
        return fields

    def _send(self, method: Any, *args: Any, sender: Any) -> Any:
        try:
            receipt = method(*args, sender=sender)
        except ContractLogicError:
            return None
        for name in {log.event_name for log in receipt.events}:
            event(name)  # --hypothesis-show-statistics tells which paths the runs took
        for log in receipt.events.filter(self.settlement.ChallengeResolved):
            self.funded += int(log.toPool)
        for log in receipt.events.filter(self.coordinator.RoundConfirmed):
            self.confirmed_roots.add(bytes(log.rewardsRoot))
        return receipt

    def _pending_round(self) -> int:
        """The lowest round that is not final (it may have no proposal)."""
        return int(self.settlement.finalRound()) + 1 if int(self.settlement.firstRound()) else 1

    def _top_up_finalizer(self) -> None:
        bond = int(self.settlement.bondInfo(self.finalizer).amount)
        if bond < FINALIZER_BOND:
            self.settlement.depositBond(FINALIZER_BOND - bond, sender=self.finalizer)

    # --- rules -------------------------------------------------------------------------------------
    @rule(honest=st.booleans())
    def propose(self, honest: bool) -> None:
        round_number = int(self.coordinator.currentRound())
        deadline = int(self.coordinator.roundInfo(round_number).deadline)
        if ape.chain.pending_timestamp < deadline:
            ape.chain.mine(deltatime=deadline - ape.chain.pending_timestamp)
        self._top_up_finalizer()
        fields = self._result(round_number, honest)
        self._send(self.settlement.propose, round_number, 0, fields, sender=self.finalizer)

    @rule()
    def propose_stale_round_again(self) -> None:
        for round_number in range(self._pending_round(), int(self.coordinator.currentRound())):
            if self.settlement.proposalInfo(round_number).stale:
                self._top_up_finalizer()
                fields = self._result(round_number, honest=True)
                self._send(self.settlement.propose, round_number, 0, fields, sender=self.finalizer)
                return

    @rule(verifier=st.integers(0, 2), offset=st.sampled_from([0, 0, 1]), for_challenge=st.booleans())
    def attest(self, verifier: int, offset: int, for_challenge: bool) -> None:
        round_number = self._pending_round() + offset
        if for_challenge:
            target = bytes(self.settlement.challengeInfo(round_number).resultHash)
        else:
            target = bytes(self.settlement.proposalInfo(round_number).resultHash)
        self._send(self.settlement.attest, round_number, target, sender=self.verifiers[verifier])

    @rule(for_challenge=st.booleans())
    def quorum(self, for_challenge: bool) -> None:
        """Two verifiers attest the same side of the lowest unfinal round: a quorum decides it."""
        for verifier in (0, 1):
            self.attest(verifier, 0, for_challenge)

    @rule(offset=st.sampled_from([0, 0, 1]), right=st.booleans())
    def challenge(self, offset: int, right: bool) -> None:
        round_number = self._pending_round() + offset
        proposal = self.settlement.proposalInfo(round_number)
        if not proposal.resultHash or int(proposal.resultHash.hex(), 16) == 0:
            return
        fields = self._result(round_number, honest=True) if right else self._result(round_number, False)
        if hash_fields(round_number, bytes(proposal.parentHash), fields) == bytes(proposal.resultHash):
            fields = self._result(round_number, honest=not right)
        self._send(self.settlement.challenge, round_number, fields, PART_REWARDS, sender=self.challenger)

    @rule(seconds=st.sampled_from([1, WINDOW // 2, WINDOW, DURATION]))
    def time_passes(self, seconds: int) -> None:
        ape.chain.mine(deltatime=seconds)

    @rule()
    def finalize(self) -> None:
        self._send(self.settlement.finalize, self._pending_round(), sender=self.challenger)

    @rule(challenger_wins=st.booleans())
    def resolve_stalled(self, challenger_wins: bool) -> None:
        self._send(self.settlement.resolveStalled, self._pending_round(), challenger_wins, sender=self.owner)

    @rule(verifier=st.integers(0, 2), withdraw=st.booleans())
    def exit(self, verifier: int, withdraw: bool) -> None:
        method = self.settlement.withdrawBond if withdraw else self.settlement.requestExit
        self._send(method, sender=self.verifiers[verifier])

    @rule(i=st.integers(0, 2), root_index=st.integers(0, 50))
    def claim(self, i: int, root_index: int) -> None:
        """Claim against any tree ever built, confirmed or not."""
        account = [*self.claimants, self.finalizer][i]
        roots = sorted(self.trees)
        if not roots:
            return
        tree = self.trees[roots[root_index % len(roots)]]
        if account.address in tree.amounts:
            amount, proof = tree.amounts[account.address], tree.proofs[account.address]
            self._send(self.coordinator.claim, amount, proof, sender=account)

    # --- invariants ----------------------------------------------------------------------------------
    @invariant()
    def the_books_balance(self) -> None:
        funded, _, claimed = (int(v) for v in self.coordinator.rewardTotals())
        assert funded == self.funded
        assert int(self.token.balanceOf(self.coordinator)) == funded - claimed
        bonds = sum(int(self.settlement.bondInfo(a).amount) for a in self.accounts)
        first, current = int(self.settlement.firstRound()), int(self.coordinator.currentRound())
        open_bonds = sum(
            CHALLENGE_BOND
            for r in range(max(first, 1), current)
            if first and self.settlement.challengeInfo(r).open
        )
        assert int(self.token.balanceOf(self.settlement)) == bonds + open_bonds
        holders = [*self.accounts, self.coordinator, self.settlement]
        assert sum(int(self.token.balanceOf(h)) for h in holders) == SUPPLY

    @invariant()
    def no_claim_pays_an_unconfirmed_round(self) -> None:
        for account in [*self.claimants, self.finalizer]:
            paid = int(self.coordinator.scoreOf(account))
            confirmed = [
                self.trees[r].amounts.get(account.address, 0) for r in self.confirmed_roots if r in self.trees
            ]
            assert paid <= max(confirmed, default=0)


TestSettlementStateful = SettlementMachine.TestCase
TestSettlementStateful.settings = settings(
    max_examples=8,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = [pytest.mark.fuzzing, pytest.mark.slow]
