"""The SDK's admission calls on the embedded chain: deploy_system records the rules, register
approves and locks the bond, the pre-flight checks raise the contract's error classes before any
gas is spent, and a revert the checks did not catch decodes to the same class."""

from __future__ import annotations

from typing import Any

import pytest

from flb_dapp.chain.admission import AdmissionRules
from flb_dapp.chain.admission_errors import (
    BondBalanceTooLow,
    CoordinatorAdmissionOpen,
    CoordinatorBondLocked,
    CoordinatorClientExited,
    CoordinatorNotAdmitted,
)
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.exceptions import ConfigError
from flb_dapp.storage.cid import cid_of_bytes
from tests.chain.conftest import deploy

BOND = 40
DELAY = 900
DIGEST = b"\x07" * 32


def bonded(accounts: Any, mode: str = "open") -> Coordinator:
    sdk, record = deploy(accounts, admission=AdmissionRules(mode, BOND, DELAY))  # type: ignore[arg-type]
    assert (record.admission, record.registration_bond, record.client_exit_delay) == (mode, BOND, DELAY)
    return sdk


def test_rules_refuse_bad_values() -> None:
    with pytest.raises(ConfigError, match="admission must be one of open, allowlist, got 'closed'"):
        AdmissionRules("closed")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"the registration bond must be 0 \.\. 2\^128-1, got -1"):
        AdmissionRules("open", -1)


def test_bond_is_approved_locked_and_returned(accounts: Any, chain: Any) -> None:
    sdk = bonded(accounts)
    client = accounts[2]
    assert sdk.admission_rules == AdmissionRules("open", BOND, DELAY)
    with pytest.raises(BondBalanceTooLow, match=f"locks a bond of {BOND} reward-token units; .* holds 0"):
        sdk.register(client, DIGEST)
    sdk.token.transfer(client.address, BOND, sender=accounts[0])
    sdk.register(client, DIGEST)  # approves, then registers
    assert sdk.bond_of(client.address).amount == BOND and sdk.bonds_held == BOND
    receipt = sdk.request_exit(client)
    released = sdk.bond_of(client.address).released_at
    assert released == chain.blocks[receipt.block_number].timestamp + DELAY
    with pytest.raises(CoordinatorClientExited) as exited:
        sdk.commit_update(client, 1, cid_of_bytes(b"update"), 5)
    assert (exited.value.client, exited.value.released_at) == (client.address, released)
    with pytest.raises(CoordinatorBondLocked) as locked:
        sdk.withdraw_bond(client)
    assert locked.value.released_at == released
    # The contract raises the same class when the check is skipped.
    with pytest.raises(CoordinatorBondLocked) as reverted, translate_reverts():
        sdk.contract.withdrawBond(sender=client)
    assert (reverted.value.client, reverted.value.released_at) == (client.address, released)
    chain.mine(deltatime=DELAY)
    sdk.withdraw_bond(client)
    assert sdk.token_balance(client.address) == BOND and sdk.bonds_held == 0


def test_allowlist_through_the_sdk(accounts: Any) -> None:
    sdk = bonded(accounts, "allowlist")
    client = accounts[3]
    sdk.token.transfer(client.address, BOND, sender=accounts[0])
    with pytest.raises(CoordinatorNotAdmitted, match="is not admitted"):
        sdk.register(client, DIGEST)
    with pytest.raises(CoordinatorNotAdmitted), translate_reverts():
        sdk.contract.register(DIGEST, sender=client)
    assert sdk.is_registrar(accounts[0].address) and not sdk.is_registrar(client.address)
    sdk.set_admitted(accounts[0], client.address)
    sdk.register(client, DIGEST)
    assert sdk.client(client.address).registered


def test_an_open_free_deployment_admits_nobody(accounts: Any) -> None:
    sdk, record = deploy(accounts)
    assert (record.admission, record.registration_bond) == ("open", 0)
    with pytest.raises(CoordinatorAdmissionOpen):
        sdk.set_admitted(accounts[0], accounts[2].address)
    with pytest.raises(CoordinatorAdmissionOpen), translate_reverts():
        sdk.contract.setAdmitted(accounts[2].address, True, sender=accounts[0])
