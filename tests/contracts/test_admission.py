"""Admission rules: an allowlist deployment registers only admitted addresses; a registration
bond is locked at registration, returned after a clean exit and its delay, forfeited to the pool
by a ban. Every revert with its arguments, every event."""

from __future__ import annotations

from typing import Any

import ape
import pytest

from tests.contracts.conftest import (
    FUNDING,
    REVEAL,
    commitment,
    deploy_coordinator,
    raw_cid,
    salt_of,
    update_commitment,
)

BOND = 25 * 10**18
EXIT_DELAY = 7_200


@pytest.fixture
def allowlisted(project: Any, owner: Any, oracle: Any, token: Any) -> Any:
    return deploy_coordinator(project, owner, oracle, token, admission=(True, 0, 0))


@pytest.fixture
def bonded(project: Any, owner: Any, oracle: Any, token: Any, clients: list[Any]) -> Any:
    coordinator = deploy_coordinator(project, owner, oracle, token, admission=(False, BOND, EXIT_DELAY))
    for client in clients:
        token.transfer(client, BOND, sender=owner)
    return coordinator


def register_bonded(coordinator: Any, token: Any, client: Any, name: str) -> Any:
    token.approve(coordinator, BOND, sender=client)
    return coordinator.register(commitment(name), sender=client)


def test_rules_are_readable(coordinator: Any, allowlisted: Any, bonded: Any, clients: list[Any]) -> None:
    assert coordinator.admissionRules() == (False, 0, 0)
    assert allowlisted.admissionRules() == (True, 0, 0)
    assert bonded.admissionRules() == (False, BOND, EXIT_DELAY)
    assert coordinator.isAdmitted(clients[0]) is True  # open: everyone
    assert allowlisted.isAdmitted(clients[0]) is False


def test_allowlist_registers_only_admitted_addresses(
    allowlisted: Any, owner: Any, clients: list[Any]
) -> None:
    first, second = clients[:2]
    with ape.reverts(allowlisted.CoordinatorNotAdmitted, client=first):
        allowlisted.register(commitment("a"), sender=first)
    receipt = allowlisted.setAdmitted(first, True, sender=owner)
    assert receipt.events.filter(allowlisted.ClientAdmitted) == [
        allowlisted.ClientAdmitted(client=first, admitted=True)
    ]
    assert allowlisted.isAdmitted(first) is True
    allowlisted.register(commitment("a"), sender=first)
    assert allowlisted.clientInfo(first).registered is True
    # A revoked admission stops a registration that did not happen yet.
    allowlisted.setAdmitted(second, True, sender=owner)
    receipt = allowlisted.setAdmitted(second, False, sender=owner)
    assert receipt.events.filter(allowlisted.ClientAdmitted) == [
        allowlisted.ClientAdmitted(client=second, admitted=False)
    ]
    with ape.reverts(allowlisted.CoordinatorNotAdmitted, client=second):
        allowlisted.register(commitment("b"), sender=second)
    # Setting the same admission twice emits nothing.
    assert list(allowlisted.setAdmitted(second, False, sender=owner).events) == []


def test_only_registrars_admit(allowlisted: Any, owner: Any, clients: list[Any], outsider: Any) -> None:
    role = allowlisted.REGISTRAR_ROLE()
    with ape.reverts(allowlisted.AccessControlUnauthorizedAccount, account=outsider, neededRole=role):
        allowlisted.setAdmitted(clients[0], True, sender=outsider)
    allowlisted.grantRole(role, outsider, sender=owner)
    allowlisted.setAdmitted(clients[0], True, sender=outsider)
    assert allowlisted.isAdmitted(clients[0]) is True


def test_open_deployment_admits_nobody(coordinator: Any, owner: Any, clients: list[Any]) -> None:
    with ape.reverts(coordinator.CoordinatorAdmissionOpen):
        coordinator.setAdmitted(clients[0], True, sender=owner)


def test_registration_locks_the_bond(bonded: Any, token: Any, clients: list[Any]) -> None:
    client = clients[0]
    with ape.reverts(token.ERC20InsufficientAllowance, spender=bonded, allowance=0, needed=BOND):
        bonded.register(commitment("a"), sender=client)
    receipt = register_bonded(bonded, token, client, "a")
    assert receipt.events.filter(bonded.BondLocked) == [bonded.BondLocked(client=client, amount=BOND)]
    assert token.balanceOf(client) == 0
    assert token.balanceOf(bonded) == FUNDING + BOND
    assert bonded.bondOf(client) == (BOND, 0)
    assert bonded.bondsHeld() == BOND
    # Bonds are not rewards: the pool did not grow.
    assert bonded.rewardTotals() == (FUNDING, 0, 0)


def test_clean_exit_returns_the_bond_after_the_delay(bonded: Any, token: Any, clients: list[Any]) -> None:
    client = clients[0]
    register_bonded(bonded, token, client, "a")
    with ape.reverts(bonded.CoordinatorNotExited, client=client):
        bonded.withdrawBond(sender=client)
    receipt = bonded.requestExit(sender=client)
    released = ape.chain.blocks[receipt.block_number].timestamp + EXIT_DELAY
    assert receipt.events.filter(bonded.ExitRequested) == [
        bonded.ExitRequested(client=client, releasedAt=released)
    ]
    assert bonded.activeClients() == 0
    assert bonded.clientInfo(client).exited is True
    assert bonded.bondOf(client) == (BOND, released)
    with ape.reverts(bonded.CoordinatorClientExited, client=client, releasedAt=released):
        bonded.requestExit(sender=client)
    with ape.reverts(bonded.CoordinatorBondLocked, client=client, releasedAt=released):
        bonded.withdrawBond(sender=client)
    ape.chain.mine(deltatime=EXIT_DELAY)
    receipt = bonded.withdrawBond(sender=client)
    assert receipt.events.filter(bonded.BondReturned) == [bonded.BondReturned(client=client, amount=BOND)]
    assert token.balanceOf(client) == BOND
    assert bonded.bondsHeld() == 0
    with ape.reverts(bonded.CoordinatorNoBond, client=client):
        bonded.withdrawBond(sender=client)
    # Exit is final for the address.
    with ape.reverts(bonded.CoordinatorAlreadyRegistered, client=client):
        bonded.register(commitment("again"), sender=client)


def test_an_exited_client_cannot_submit(bonded: Any, token: Any, clients: list[Any]) -> None:
    stays, leaves = clients[:2]
    register_bonded(bonded, token, stays, "a")
    register_bonded(bonded, token, leaves, "b")
    cid = raw_cid(b"update")
    value = update_commitment(leaves, 1, cid, 5, salt_of(leaves, 1))
    bonded.commitUpdate(1, value, sender=leaves)
    assert bonded.roundInfo(1).pendingReveals == 1
    receipt = bonded.requestExit(sender=leaves)
    released = ape.chain.blocks[receipt.block_number].timestamp + EXIT_DELAY
    # Its commitment stops counting as pending, as a ban's does.
    assert bonded.roundInfo(1).pendingReveals == 0
    with ape.reverts(bonded.CoordinatorClientExited, client=leaves, releasedAt=released):
        bonded.commitUpdate(1, value, sender=leaves)
    # The one client left commits: that closes the commit phase at once.
    other = update_commitment(stays, 1, cid, 5, salt_of(stays, 1))
    closing = bonded.commitUpdate(1, other, sender=stays)
    assert len(closing.events.filter(bonded.CommitPhaseClosed)) == 1
    with ape.reverts(bonded.CoordinatorClientExited, client=leaves, releasedAt=released):
        bonded.revealUpdate(1, cid, 5, salt_of(leaves, 1), sender=leaves)


def test_the_last_commit_pending_on_an_exit_closes_the_commit_phase(
    bonded: Any, token: Any, clients: list[Any]
) -> None:
    stays, leaves = clients[:2]
    register_bonded(bonded, token, stays, "a")
    register_bonded(bonded, token, leaves, "b")
    bonded.commitUpdate(1, update_commitment(stays, 1, raw_cid(b"u"), 5, salt_of(stays, 1)), sender=stays)
    receipt = bonded.requestExit(sender=leaves)
    now = ape.chain.blocks[receipt.block_number].timestamp
    assert receipt.events.filter(bonded.CommitPhaseClosed) == [bonded.CommitPhaseClosed(round=1, at=now)]
    assert bonded.roundInfo(1).deadline == now


def test_a_ban_during_the_exit_delay_forfeits_the_bond_to_the_pool(
    bonded: Any, token: Any, owner: Any, clients: list[Any]
) -> None:
    client = clients[0]
    register_bonded(bonded, token, client, "a")
    bonded.requestExit(sender=client)
    receipt = bonded.setClientBanned(client, True, sender=owner)
    assert receipt.events.filter(bonded.BondForfeited) == [bonded.BondForfeited(client=client, amount=BOND)]
    assert receipt.events.filter(bonded.RewardsFunded) == [
        bonded.RewardsFunded(funder=bonded, amount=BOND, totalFunded=FUNDING + BOND)
    ]
    assert bonded.rewardTotals() == (FUNDING + BOND, 0, 0)
    assert bonded.bondsHeld() == 0
    assert token.balanceOf(bonded) == FUNDING + BOND
    ape.chain.mine(deltatime=EXIT_DELAY)
    with ape.reverts(bonded.CoordinatorNotExited, client=client):
        bonded.withdrawBond(sender=client)
    # Unbanned, the client is active again, without a bond.
    bonded.setClientBanned(client, False, sender=owner)
    assert bonded.activeClients() == 1
    assert bonded.bondOf(client)[0] == 0


def test_a_ban_of_an_active_client_forfeits_its_bond(
    bonded: Any, token: Any, owner: Any, clients: list[Any]
) -> None:
    client = clients[0]
    register_bonded(bonded, token, client, "a")
    receipt = bonded.setClientBanned(client, True, sender=owner)
    assert receipt.events.filter(bonded.BondForfeited) == [bonded.BondForfeited(client=client, amount=BOND)]
    assert bonded.activeClients() == 0
    with ape.reverts(bonded.CoordinatorClientBanned, client=client):
        bonded.requestExit(sender=client)


def test_exit_needs_a_registration(coordinator: Any, clients: list[Any]) -> None:
    with ape.reverts(coordinator.CoordinatorNotRegistered, client=clients[0]):
        coordinator.requestExit(sender=clients[0])


def test_a_free_deployment_lets_clients_exit_without_a_bond(coordinator: Any, clients: list[Any]) -> None:
    client = clients[0]
    coordinator.register(commitment("a"), sender=client)
    receipt = coordinator.requestExit(sender=client)
    assert receipt.events.filter(coordinator.ExitRequested) == [
        coordinator.ExitRequested(client=client, releasedAt=ape.chain.blocks[receipt.block_number].timestamp)
    ]
    with ape.reverts(coordinator.CoordinatorNoBond, client=client):
        coordinator.withdrawBond(sender=client)


def test_pause_stops_exits(bonded: Any, token: Any, owner: Any, clients: list[Any]) -> None:
    client = clients[0]
    register_bonded(bonded, token, client, "a")
    bonded.pause(sender=owner)
    with ape.reverts(bonded.EnforcedPause):
        bonded.requestExit(sender=client)
    bonded.unpause(sender=owner)
    bonded.requestExit(sender=client)
    ape.chain.mine(deltatime=REVEAL + EXIT_DELAY)
    bonded.pause(sender=owner)
    with ape.reverts(bonded.EnforcedPause):
        bonded.withdrawBond(sender=client)
