"""Hypothesis drives random sequences of register / submit / time passing / finalize / claim
against a fresh coordinator and checks the contract against a plain Python model of the rules."""

from __future__ import annotations

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from flb_dapp.merkle import build_rewards_tree
from tests.contracts.conftest import DURATION, INITIAL_CID, commitment, raw_cid

CLIENTS = 4
BUDGET = 1_000
FUNDING = 2_500  # enough for two full rounds only, so the pool limit is exercised too


class CoordinatorMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        accounts = ape.accounts.test_accounts
        self.owner, self.oracle = accounts[0], accounts[1]
        self.clients = [accounts[2 + i] for i in range(CLIENTS)]
        self.token = self.owner.deploy(ape.project.FLBRewardToken, self.owner, 10**24)
        self.coordinator = self.owner.deploy(
            ape.project.FLBCoordinator, self.token, self.owner, self.oracle, INITIAL_CID, DURATION, BUDGET
        )
        self.token.approve(self.coordinator, FUNDING, sender=self.owner)
        self.coordinator.fundRewards(FUNDING, sender=self.owner)
        self.start_balances = [int(self.token.balanceOf(c)) for c in self.clients]
        self.registered: set[int] = set()
        self.round = 1
        self.submitted: dict[int, set[int]] = {1: set()}
        self.cumulative = [0] * CLIENTS
        self.paid = [0] * CLIENTS
        self.allocated = 0
        self.last_seen_round = 1
        self.tree = build_rewards_tree({})

    def _deadline(self) -> int:
        return int(self.coordinator.roundInfo(self.round).deadline)

    def _now(self) -> int:
        return int(ape.chain.pending_timestamp)

    @rule(i=st.integers(0, CLIENTS - 1))
    def register(self, i: int) -> None:
        client = self.clients[i]
        if i in self.registered:
            with ape.reverts(self.coordinator.CoordinatorAlreadyRegistered, client=client):
                self.coordinator.register(commitment(f"m{i}"), sender=client)
        else:
            self.coordinator.register(commitment(f"m{i}"), sender=client)
            self.registered.add(i)

    @rule(i=st.integers(0, CLIENTS - 1), samples=st.integers(1, 100))
    def submit(self, i: int, samples: int) -> None:
        client = self.clients[i]
        cid = raw_cid(f"{self.round}:{i}".encode())
        # NOTE: the contract checks the deadline first, then registration, then duplicates.
        if self._now() >= self._deadline():
            with ape.reverts(
                self.coordinator.CoordinatorRoundClosed, round=self.round, deadline=self._deadline()
            ):
                self.coordinator.submitUpdate(self.round, cid, samples, sender=client)
        elif i not in self.registered:
            with ape.reverts(self.coordinator.CoordinatorNotRegistered, client=client):
                self.coordinator.submitUpdate(self.round, cid, samples, sender=client)
        elif i in self.submitted[self.round]:
            with ape.reverts(self.coordinator.CoordinatorAlreadySubmitted, client=client, round=self.round):
                self.coordinator.submitUpdate(self.round, cid, samples, sender=client)
        else:
            self.coordinator.submitUpdate(self.round, cid, samples, sender=client)
            self.submitted[self.round].add(i)

    @rule(seconds=st.sampled_from([1, DURATION // 2, DURATION]))
    def time_passes(self, seconds: int) -> None:
        ape.chain.mine(deltatime=seconds)

    @rule(shares=st.lists(st.integers(0, 400), min_size=CLIENTS, max_size=CLIENTS))
    def finalize(self, shares: list[int]) -> None:
        submitters = self.submitted[self.round]
        rewards = {i: shares[i] for i in submitters}
        total = sum(rewards.values())
        due = self._now() >= self._deadline() or (
            len(self.registered) > 0 and len(submitters) >= len(self.registered)
        )
        cumulative = list(self.cumulative)
        for i, amount in rewards.items():
            cumulative[i] += amount
        tree = build_rewards_tree({self.clients[i].address: a for i, a in enumerate(cumulative)})
        args = (
            self.round,
            raw_cid(b"g%d" % self.round),
            raw_cid(b"r%d" % self.round),
            tree.root,
            total,
            0,
            0,
        )
        if not due:
            with ape.reverts(self.coordinator.CoordinatorRoundNotDue):
                self.coordinator.finalizeRound(*args, sender=self.oracle)
            return
        if self.allocated + total > FUNDING:
            with ape.reverts(
                self.coordinator.CoordinatorPoolUnderfunded,
                roundRewards=total,
                available=FUNDING - self.allocated,
            ):
                self.coordinator.finalizeRound(*args, sender=self.oracle)
            return
        self.coordinator.finalizeRound(*args, sender=self.oracle)
        with ape.reverts(self.coordinator.CoordinatorRoundAlreadyFinalized, round=self.round):
            self.coordinator.finalizeRound(*args, sender=self.oracle)
        self.cumulative, self.tree = cumulative, tree
        self.allocated += total
        self.round += 1
        self.submitted[self.round] = set()

    @precondition(lambda self: self.round > 1)
    @rule(i=st.integers(0, CLIENTS - 1))
    def claim(self, i: int) -> None:
        client = self.clients[i]
        amount = self.cumulative[i]
        proof = self.tree.proofs.get(client.address, [])
        if amount == 0:
            with ape.reverts(self.coordinator.CoordinatorInvalidProof, client=client, cumulativeAmount=0):
                self.coordinator.claim(0, proof, sender=client)
        elif amount == self.paid[i]:
            with ape.reverts(
                self.coordinator.CoordinatorNothingToClaim,
                client=client,
                cumulativeAmount=amount,
                claimed=amount,
            ):
                self.coordinator.claim(amount, proof, sender=client)
        else:
            self.coordinator.claim(amount, proof, sender=client)
            self.paid[i] = amount

    @invariant()
    def round_numbers_only_grow_by_one(self) -> None:
        current = int(self.coordinator.currentRound())
        assert current == self.round
        assert current - self.last_seen_round in (0, 1)
        self.last_seen_round = current

    @invariant()
    def at_most_one_update_per_client_per_round(self) -> None:
        assert int(self.coordinator.roundInfo(self.round).submissions) == len(self.submitted[self.round])
        for i, client in enumerate(self.clients):
            info = self.coordinator.clientInfo(client)
            assert int(info.submissions) == sum(i in s for s in self.submitted.values())

    @invariant()
    def never_pays_more_than_allocated(self) -> None:
        funded, allocated, claimed = self.coordinator.rewardTotals()
        assert (funded, allocated, claimed) == (FUNDING, self.allocated, sum(self.paid))
        assert claimed <= allocated <= funded
        for i, client in enumerate(self.clients):
            assert int(self.token.balanceOf(client)) - self.start_balances[i] == self.paid[i]


TestCoordinatorStateful = CoordinatorMachine.TestCase
TestCoordinatorStateful.settings = settings(
    max_examples=8,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = [pytest.mark.fuzzing, pytest.mark.slow]
