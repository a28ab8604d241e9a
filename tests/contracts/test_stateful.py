"""Hypothesis drives random sequences of register / ban / commit / reveal / exit / bond withdrawal /
time passing / finalize / claim against a fresh coordinator with registration bonds and checks the
contract against a plain Python model of the rules (the commit phase closing early included): the
reward pool, the bonds held and what was paid always add up to the coordinator's token balance."""

from __future__ import annotations

import ape
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from flb_dapp.merkle import build_rewards_tree
from tests.contracts.conftest import (
    DURATION,
    INITIAL_CID,
    REVEAL,
    commitment,
    raw_cid,
    salt_of,
    update_commitment,
)

CLIENTS = 4
BUDGET = 1_000
FUNDING = 2_500  # enough for two full rounds only, so the pool limit is exercised too
BOND = 70  # registration bond; a ban forfeits it to the pool
EXIT_DELAY = REVEAL  # time_passes can cross it
OPEN_BONDED = (False, BOND, EXIT_DELAY)


class CoordinatorMachine(RuleBasedStateMachine):
    @initialize()
    def deploy(self) -> None:
        accounts = ape.accounts.test_accounts
        self.owner, self.oracle = accounts[0], accounts[1]
        self.clients = [accounts[2 + i] for i in range(CLIENTS)]
        self.token = self.owner.deploy(ape.project.FLBRewardToken, self.owner, 10**24)
        self.coordinator = self.owner.deploy(
            ape.project.FLBCoordinator,
            self.token,
            self.owner,
            self.oracle,
            INITIAL_CID,
            DURATION,
            REVEAL,
            BUDGET,
            0,
            OPEN_BONDED,
        )
        self.token.approve(self.coordinator, FUNDING, sender=self.owner)
        self.coordinator.fundRewards(FUNDING, sender=self.owner)
        for client in self.clients:
            self.token.transfer(client, BOND, sender=self.owner)
            self.token.approve(self.coordinator, BOND, sender=client)
        self.start_balances = [int(self.token.balanceOf(c)) for c in self.clients]
        self.registered: set[int] = set()
        self.banned: set[int] = set()
        self.exited: dict[int, int] = {}  # client -> when its bond is released
        self.bonds = [0] * CLIENTS  # bond each client holds in the coordinator
        self.returned = [0] * CLIENTS  # bonds paid back
        self.forfeited = 0
        self.round = 1
        self.deadline = int(self.coordinator.roundInfo(1).deadline)
        self.committed: set[int] = set()  # committed in the open round
        self.pending: set[int] = set()  # committed, not revealed, not banned
        self.revealed: dict[int, set[int]] = {1: set()}
        self.samples: dict[int, int] = {}
        self.cumulative = [0] * CLIENTS
        self.paid = [0] * CLIENTS
        self.allocated = 0
        self.last_seen_round = 1
        self.tree = build_rewards_tree({})

    def _now(self) -> int:
        return int(ape.chain.pending_timestamp)

    def _active(self) -> int:
        return len(self.registered - self.banned - set(self.exited))

    def _leave_active_set(self, i: int, receipt: object, was_open: bool) -> None:
        self.pending.discard(i)
        if was_open and self._active() > 0 and len(self.pending) >= self._active():
            self.deadline = self._timestamp(receipt)

    def _inactive_revert(self, i: int) -> object:
        """The revert commit, reveal and exit raise for a client that is not active (None if active)."""
        client = self.clients[i]
        if i not in self.registered:
            return ape.reverts(self.coordinator.CoordinatorNotRegistered, client=client)
        if i in self.banned:
            return ape.reverts(self.coordinator.CoordinatorClientBanned, client=client)
        if i in self.exited:
            return ape.reverts(
                self.coordinator.CoordinatorClientExited, client=client, releasedAt=self.exited[i]
            )
        return None

    def _timestamp(self, receipt: object) -> int:
        return int(ape.chain.blocks[receipt.block_number].timestamp)  # type: ignore[attr-defined]

    def _cid(self, i: int) -> bytes:
        return raw_cid(f"{self.round}:{i}".encode())

    def _salt(self, i: int) -> bytes:
        return salt_of(self.clients[i], self.round)

    @rule(i=st.integers(0, CLIENTS - 1))
    def register(self, i: int) -> None:
        client = self.clients[i]
        if i in self.registered:
            with ape.reverts(self.coordinator.CoordinatorAlreadyRegistered, client=client):
                self.coordinator.register(commitment(f"m{i}"), sender=client)
        else:
            receipt = self.coordinator.register(commitment(f"m{i}"), sender=client)
            assert receipt.events.filter(self.coordinator.BondLocked) == [
                self.coordinator.BondLocked(client=client, amount=BOND)
            ]
            self.registered.add(i)
            self.bonds[i] = BOND

    @rule(i=st.integers(0, CLIENTS - 1))
    def request_exit(self, i: int) -> None:
        client = self.clients[i]
        refusal = self._inactive_revert(i)
        if refusal is not None:
            with refusal:  # type: ignore[attr-defined]
                self.coordinator.requestExit(sender=client)
            return
        was_open = self._now() < self.deadline
        receipt = self.coordinator.requestExit(sender=client)
        self.exited[i] = self._timestamp(receipt) + EXIT_DELAY
        assert receipt.events.filter(self.coordinator.ExitRequested) == [
            self.coordinator.ExitRequested(client=client, releasedAt=self.exited[i])
        ]
        self._leave_active_set(i, receipt, was_open)

    @rule(i=st.integers(0, CLIENTS - 1))
    def withdraw_bond(self, i: int) -> None:
        client = self.clients[i]
        if i not in self.exited:
            with ape.reverts(self.coordinator.CoordinatorNotExited, client=client):
                self.coordinator.withdrawBond(sender=client)
        elif self.bonds[i] == 0:
            with ape.reverts(self.coordinator.CoordinatorNoBond, client=client):
                self.coordinator.withdrawBond(sender=client)
        elif self._now() < self.exited[i]:
            with ape.reverts(
                self.coordinator.CoordinatorBondLocked, client=client, releasedAt=self.exited[i]
            ):
                self.coordinator.withdrawBond(sender=client)
        else:
            self.coordinator.withdrawBond(sender=client)
            self.returned[i] += self.bonds[i]
            self.bonds[i] = 0

    @rule(i=st.integers(0, CLIENTS - 1), ban=st.booleans())
    def set_banned(self, i: int, ban: bool) -> None:
        client = self.clients[i]
        if i not in self.registered:
            with ape.reverts(self.coordinator.CoordinatorNotRegistered, client=client):
                self.coordinator.setClientBanned(client, ban, sender=self.owner)
            return
        was_open = self._now() < self.deadline
        receipt = self.coordinator.setClientBanned(client, ban, sender=self.owner)
        if ban == (i in self.banned):
            return
        if ban:
            was_active = i not in self.exited
            self.banned.add(i)
            self.exited.pop(i, None)
            if was_active:
                self._leave_active_set(i, receipt, was_open)
            self.forfeited += self.bonds[i]
            self.bonds[i] = 0
        else:
            self.banned.discard(i)
            if i in self.committed and i not in self.revealed[self.round]:
                self.pending.add(i)

    @rule(i=st.integers(0, CLIENTS - 1), samples=st.integers(1, 100))
    def commit(self, i: int, samples: int) -> None:
        client = self.clients[i]
        value = update_commitment(client, self.round, self._cid(i), samples, self._salt(i))
        # NOTE: the contract checks the deadline first, then registration, the ban, duplicates.
        if self._now() >= self.deadline:
            with ape.reverts(
                self.coordinator.CoordinatorRoundClosed, round=self.round, deadline=self.deadline
            ):
                self.coordinator.commitUpdate(self.round, value, sender=client)
        elif (refusal := self._inactive_revert(i)) is not None:
            with refusal:  # type: ignore[attr-defined]
                self.coordinator.commitUpdate(self.round, value, sender=client)
        elif i in self.committed:
            with ape.reverts(self.coordinator.CoordinatorAlreadyCommitted, client=client, round=self.round):
                self.coordinator.commitUpdate(self.round, value, sender=client)
        else:
            receipt = self.coordinator.commitUpdate(self.round, value, sender=client)
            self.committed.add(i)
            self.pending.add(i)
            self.samples[i] = samples
            if len(self.pending) >= self._active():
                self.deadline = self._timestamp(receipt)

    @rule(i=st.integers(0, CLIENTS - 1))
    def reveal(self, i: int) -> None:
        client = self.clients[i]
        samples = self.samples.get(i, 1) if i in self.committed else 1
        args = (self.round, self._cid(i), samples, self._salt(i))
        now, closes_at = self._now(), self.deadline + REVEAL
        if now < self.deadline:
            with ape.reverts(
                self.coordinator.CoordinatorRevealNotOpen, round=self.round, opensAt=self.deadline
            ):
                self.coordinator.revealUpdate(*args, sender=client)
        elif now >= closes_at:
            with ape.reverts(self.coordinator.CoordinatorRevealClosed, round=self.round, closedAt=closes_at):
                self.coordinator.revealUpdate(*args, sender=client)
        elif i not in self.committed:
            with ape.reverts(self.coordinator.CoordinatorNotCommitted, client=client, round=self.round):
                self.coordinator.revealUpdate(*args, sender=client)
        elif i in self.revealed[self.round]:
            with ape.reverts(self.coordinator.CoordinatorAlreadySubmitted, client=client, round=self.round):
                self.coordinator.revealUpdate(*args, sender=client)
        elif (refusal := self._inactive_revert(i)) is not None:
            with refusal:  # type: ignore[attr-defined]
                self.coordinator.revealUpdate(*args, sender=client)
        else:
            self.coordinator.revealUpdate(*args, sender=client)
            self.revealed[self.round].add(i)
            self.pending.discard(i)

    @rule(seconds=st.sampled_from([1, REVEAL // 2, REVEAL, DURATION]))
    def time_passes(self, seconds: int) -> None:
        ape.chain.mine(deltatime=seconds)

    @rule(shares=st.lists(st.integers(0, BUDGET // CLIENTS), min_size=CLIENTS, max_size=CLIENTS))
    def finalize(self, shares: list[int]) -> None:
        submitters = self.revealed[self.round]
        rewards = {i: shares[i] for i in submitters}
        total = sum(rewards.values())
        now = self._now()
        due = now >= self.deadline and (not self.pending or now >= self.deadline + REVEAL)
        cumulative = list(self.cumulative)
        for i, amount in rewards.items():
            cumulative[i] += amount
        tree = build_rewards_tree({self.clients[i].address: a for i, a in enumerate(cumulative)})

        def args(count: int) -> tuple[object, ...]:
            return (
                self.round,
                count,
                raw_cid(b"g%d" % self.round),
                raw_cid(b"r%d" % self.round),
                tree.root,
                total,
                0,
                0,
            )

        count = len(submitters)
        if not due:
            with ape.reverts(self.coordinator.CoordinatorRoundNotDue):
                self.coordinator.finalizeRound(*args(count), sender=self.oracle)
            return
        with ape.reverts(
            self.coordinator.CoordinatorSubmissionCountMismatch,
            round=self.round,
            given=count + 1,
            actual=count,
        ):
            self.coordinator.finalizeRound(*args(count + 1), sender=self.oracle)
        if self.allocated + total > FUNDING + self.forfeited:
            with ape.reverts(
                self.coordinator.CoordinatorPoolUnderfunded,
                roundRewards=total,
                available=FUNDING + self.forfeited - self.allocated,
            ):
                self.coordinator.finalizeRound(*args(count), sender=self.oracle)
            return
        receipt = self.coordinator.finalizeRound(*args(count), sender=self.oracle)
        with ape.reverts(self.coordinator.CoordinatorRoundAlreadyFinalized, round=self.round):
            self.coordinator.finalizeRound(*args(count), sender=self.oracle)
        self.cumulative, self.tree = cumulative, tree
        self.allocated += total
        self.round += 1
        self.deadline = self._timestamp(receipt) + DURATION
        self.committed, self.pending = set(), set()
        self.revealed[self.round] = set()

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
        info = self.coordinator.roundInfo(self.round)
        assert int(info.submissions) == len(self.revealed[self.round])
        assert int(info.pendingReveals) == len(self.pending)
        assert int(info.deadline) == self.deadline
        assert int(self.coordinator.activeClients()) == self._active()
        for i, client in enumerate(self.clients):
            record = self.coordinator.clientInfo(client)
            assert int(record.submissions) == sum(i in s for s in self.revealed.values())

    @invariant()
    def never_pays_more_than_allocated(self) -> None:
        funded, allocated, claimed = self.coordinator.rewardTotals()
        assert (funded, allocated, claimed) == (FUNDING + self.forfeited, self.allocated, sum(self.paid))
        assert claimed <= allocated <= funded
        assert int(self.coordinator.bondsHeld()) == sum(self.bonds)
        # What the coordinator holds is exactly the unclaimed pool plus the bonds.
        assert int(self.token.balanceOf(self.coordinator)) == funded - claimed + sum(self.bonds)
        for i, client in enumerate(self.clients):
            locked = BOND if i in self.registered else 0
            change = self.paid[i] - locked + self.returned[i]
            assert int(self.token.balanceOf(client)) - self.start_balances[i] == change
            assert int(self.coordinator.bondOf(client)[0]) == self.bonds[i]


TestCoordinatorStateful = CoordinatorMachine.TestCase
TestCoordinatorStateful.settings = settings(
    max_examples=10,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
pytestmark = [pytest.mark.fuzzing, pytest.mark.slow]
