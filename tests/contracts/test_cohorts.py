"""Cohorts: a round samples exactly K of the clients registered when it opened, from a seed fixed at
that moment; only members may commit, and the commit phase closes once the cohort committed. The
off-chain re-derivation (flb_dapp.chain.cohort) must agree with `isCohortMember` for every address."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from flb_dapp.chain.cohort import is_member, member_indices, position
from tests.contracts.conftest import (
    REVEAL,
    commitment,
    deploy_coordinator,
    raw_cid,
    salt_of,
    update_commitment,
)

ZERO = b"\x00" * 32


def commit(coordinator: Any, client: Any, round_number: int) -> Any:
    cid = raw_cid(f"update {round_number} {client.address}".encode())
    value = update_commitment(client, round_number, cid, 10, salt_of(client, round_number))
    return coordinator.commitUpdate(round_number, value, sender=client)


def finalize_empty(coordinator: Any, oracle: Any, chain: Any, round_number: int) -> Any:
    """Let the round run out with no commit and finalize it: the next round opens."""
    info = coordinator.roundInfo(round_number)
    chain.mine(deltatime=max(info.revealDeadline - chain.pending_timestamp, 0) + 1)
    return coordinator.finalizeRound(
        round_number,
        0,
        raw_cid(f"global {round_number}".encode()),
        raw_cid(f"report {round_number}".encode()),
        ZERO,
        0,
        0,
        0,
        sender=oracle,
    )


def new_clients(owner: Any, count: int) -> list[Any]:
    """Fresh funded accounts: the test mnemonic has only ten."""
    made = [ape.accounts.test_accounts.generate_test_account() for _ in range(count)]
    for account in made:
        owner.transfer(account, 10**17)
    return made


def expected_seed(coordinator: Any, chain: Any, receipt: Any, round_number: int) -> int:
    """``uint192(keccak256(abi.encode(prevrandao, coordinator, round)))`` of the opening block."""
    # NOTE: the embedded chain (py-evm via eth-tester) runs every block with prevrandao 0 although
    # its headers report a mix hash; a real node's header mixHash is the prevrandao the EVM saw.
    block = chain.provider.web3.eth.get_block(receipt.block_number)
    randao = ZERO if chain.provider.name == "test" else bytes(block["mixHash"])
    digest = keccak(
        abi_encode(["bytes32", "address", "uint256"], [randao, coordinator.address, round_number])
    )
    return int.from_bytes(digest, "big") % 2**192


def sampled_round(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any, clients: list[Any], size: int
) -> tuple[Any, Any]:
    """A coordinator with cohort size ``size``, every client registered in round 1 (opened with
    nobody registered, so unsampled), and round 2 open with its cohort drawn."""
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=0, cohort_size=size)
    for i, client in enumerate(clients):
        coordinator.register(commitment(f"cohort client {i}"), sender=client)
    return coordinator, finalize_empty(coordinator, oracle, chain, 1)


def test_cohort_size_zero_lets_every_registered_client_commit(
    coordinator: Any, registered: list[Any], outsider: Any
) -> None:
    info = coordinator.roundInfo(1)
    assert (info.cohortSeed, info.cohortSize, info.cohortPopulation) == (ZERO, 0, 0)
    assert coordinator.pendingCohortSize() == 0 and coordinator.registeredClients() == 3
    assert [coordinator.isCohortMember(1, c) for c in registered] == [True, True, True]
    assert not coordinator.isCohortMember(1, outsider)  # not registered
    assert not coordinator.isCohortMember(0, registered[0]) and not coordinator.isCohortMember(
        2, registered[0]
    )
    assert [coordinator.clientInfo(c).registrationIndex for c in registered] == [0, 1, 2]


def test_a_round_opened_with_at_most_k_registered_samples_nobody(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any, clients: list[Any]
) -> None:
    coordinator, receipt = sampled_round(project, owner, oracle, token, chain, clients[:3], size=3)
    assert receipt.events.filter(coordinator.CohortDrawn) == []
    assert coordinator.roundInfo(2).cohortSize == 0
    for client in clients[:3]:
        commit(coordinator, client, 2)
    assert coordinator.roundInfo(2).deadline == chain.blocks.head.timestamp  # every active client


def test_the_draw_its_event_and_the_exact_revert_for_a_non_member(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any
) -> None:
    clients = new_clients(owner, 10)
    coordinator, receipt = sampled_round(project, owner, oracle, token, chain, clients, size=3)
    seed = expected_seed(coordinator, chain, receipt, 2)
    assert receipt.events.filter(coordinator.CohortDrawn) == [
        coordinator.CohortDrawn(round=2, seed=seed.to_bytes(32, "big"), size=3, population=10)
    ]
    info = coordinator.roundInfo(2)
    assert (int.from_bytes(info.cohortSeed, "big"), info.cohortSize, info.cohortPopulation) == (seed, 3, 10)
    members = [i for i, c in enumerate(clients) if coordinator.isCohortMember(2, c)]
    assert members == member_indices(seed, 3, 10) and len(members) == 3
    outsider = next(c for i, c in enumerate(clients) if i not in members)
    with ape.reverts(
        coordinator.CoordinatorNotInCohort, client=outsider, round=2, cohortSize=3, population=10
    ):
        commit(coordinator, outsider, 2)
    late = new_clients(owner, 1)[0]
    coordinator.register(commitment("late"), sender=late)  # index 10: outside this round's population
    assert coordinator.clientInfo(late).registrationIndex == 10 and not coordinator.isCohortMember(2, late)
    with ape.reverts(coordinator.CoordinatorNotInCohort, client=late, round=2, cohortSize=3, population=10):
        commit(coordinator, late, 2)


def test_the_commit_phase_closes_once_the_cohort_committed(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any
) -> None:
    clients = new_clients(owner, 10)
    coordinator, _ = sampled_round(project, owner, oracle, token, chain, clients, size=3)
    members = [c for c in clients if coordinator.isCohortMember(2, c)]
    commit(coordinator, members[0], 2)
    commit(coordinator, members[1], 2)
    assert coordinator.roundInfo(2).deadline > chain.pending_timestamp
    receipt = commit(coordinator, members[2], 2)
    closed_at = chain.blocks[receipt.block_number].timestamp
    assert receipt.events.filter(coordinator.CommitPhaseClosed) == [
        coordinator.CommitPhaseClosed(round=2, at=closed_at)
    ]
    info = coordinator.roundInfo(2)
    assert (info.deadline, info.revealDeadline, info.pendingReveals) == (closed_at, closed_at + REVEAL, 3)


def test_cohort_size_takes_effect_from_the_next_round(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any, clients: list[Any], outsider: Any
) -> None:
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=0)
    for i, client in enumerate(clients):
        coordinator.register(commitment(f"client {i}"), sender=client)
    receipt = coordinator.setCohortSize(2, sender=owner)
    assert receipt.events == [coordinator.CohortSizeUpdated(cohortSize=2, effectiveFromRound=2)]
    assert coordinator.pendingCohortSize() == 2 and coordinator.roundInfo(1).cohortSize == 0
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=coordinator.DEFAULT_ADMIN_ROLE(),
    ):
        coordinator.setCohortSize(1, sender=outsider)
    opened = finalize_empty(coordinator, oracle, chain, 1)
    seed = expected_seed(coordinator, chain, opened, 2)
    assert opened.events.filter(coordinator.CohortDrawn) == [
        coordinator.CohortDrawn(round=2, seed=seed.to_bytes(32, "big"), size=2, population=5)
    ]
    assert sum(coordinator.isCohortMember(2, c) for c in clients) == 2
    coordinator.setCohortSize(0, sender=owner)
    third = finalize_empty(coordinator, oracle, chain, 2)
    assert third.events.filter(coordinator.CohortDrawn) == [] and coordinator.roundInfo(3).cohortSize == 0
    assert coordinator.roundInfo(2).cohortSize == 2  # a finalized round keeps its record


def test_round_one_draws_its_cohort_once_the_clients_registered(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any, outsider: Any
) -> None:
    clients = new_clients(owner, 6)
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=0, cohort_size=2)
    coordinator.register(commitment("first"), sender=clients[0])
    with ape.reverts(coordinator.CoordinatorCohortNotDrawable, round=1, cohortSize=2, registeredClients=1):
        coordinator.drawCohort(sender=owner)  # K >= registered: nothing to sample from
    for i, client in enumerate(clients[1:], start=1):
        coordinator.register(commitment(f"round one {i}"), sender=client)
    with ape.reverts(
        coordinator.AccessControlUnauthorizedAccount,
        account=outsider,
        neededRole=coordinator.DEFAULT_ADMIN_ROLE(),
    ):
        coordinator.drawCohort(sender=outsider)
    receipt = coordinator.drawCohort(sender=owner)
    seed = expected_seed(coordinator, chain, receipt, 1)
    assert receipt.events == [
        coordinator.CohortDrawn(round=1, seed=seed.to_bytes(32, "big"), size=2, population=6)
    ]
    members = [c for c in clients if coordinator.isCohortMember(1, c)]
    assert [clients.index(c) for c in members] == member_indices(seed, 2, 6)
    with ape.reverts(coordinator.CoordinatorCohortNotDrawable, round=1, cohortSize=2, registeredClients=6):
        coordinator.drawCohort(sender=owner)  # drawn once: no re-roll
    outsider_client = next(c for c in clients if c not in members)
    with ape.reverts(
        coordinator.CoordinatorNotInCohort, client=outsider_client, round=1, cohortSize=2, population=6
    ):
        commit(coordinator, outsider_client, 1)
    commit(coordinator, members[0], 1)
    commit(coordinator, members[1], 1)
    assert coordinator.roundInfo(1).deadline == chain.blocks.head.timestamp  # the cohort committed


def test_a_round_with_a_commitment_cannot_draw_a_cohort(
    project: Any, owner: Any, oracle: Any, token: Any, clients: list[Any]
) -> None:
    coordinator = deploy_coordinator(project, owner, oracle, token, funding=0)
    for i, client in enumerate(clients):
        coordinator.register(commitment(f"committed {i}"), sender=client)
    with ape.reverts(coordinator.CoordinatorCohortNotDrawable, round=1, cohortSize=0, registeredClients=5):
        coordinator.drawCohort(sender=owner)  # no cohort size
    coordinator.setCohortSize(2, sender=owner)
    commit(coordinator, clients[0], 1)
    with ape.reverts(coordinator.CoordinatorCohortNotDrawable, round=1, cohortSize=2, registeredClients=5):
        coordinator.drawCohort(sender=owner)  # a client committed under "everyone may train"


def test_hundred_clients_python_rederivation_matches_the_contract(
    project: Any, owner: Any, oracle: Any, token: Any, chain: Any, accounts: Any
) -> None:
    clients = new_clients(owner, 100)
    coordinator, receipt = sampled_round(project, owner, oracle, token, chain, clients, size=10)
    seed = expected_seed(coordinator, chain, receipt, 2)
    on_chain = [bool(coordinator.isCohortMember(2, c)) for c in clients]
    assert on_chain == [is_member(seed, i, 10, 100) for i in range(100)]
    assert sum(on_chain) == 10
    assert not any(coordinator.isCohortMember(2, a) for a in list(accounts)[:3])  # never registered


@pytest.mark.parametrize("population", [1, 2, 3, 4, 5, 17, 64, 65, 1000])
def test_the_draw_is_a_permutation_so_exactly_k_are_drawn(population: int) -> None:
    seed = int.from_bytes(keccak(b"seed %d" % population), "big") % 2**192
    assert sorted(position(seed, i, population) for i in range(population)) == list(range(population))
    for size in {1, population // 10, population // 2, population - 1}:
        assert len(member_indices(seed, size, population)) == size


def test_thousand_clients_get_fresh_balanced_cohorts() -> None:
    """1,000 clients, 100 per round over 50 seeds: exactly 100 each time, different members each
    round, and every client drawn close to the expected 5 times."""
    draws = [set(member_indices(s << 100, 100, 1000)) for s in range(1, 51)]
    assert all(len(d) == 100 for d in draws)
    assert len({frozenset(d) for d in draws}) == 50
    counts = [sum(i in d for d in draws) for i in range(1000)]
    assert sum(counts) == 5000 and max(counts) <= 16  # binomial(50, 0.1): P(>16) < 1e-5 per client
