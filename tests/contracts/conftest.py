"""Fixtures for the contract suite (ape test style): fresh contracts for every test.

The same suite runs on Ape's embedded chain and, in tests/contracts/test_on_anvil.py, against a
real anvil node (`pytest tests/contracts --network http://127.0.0.1:PORT`), so nothing here
depends on a particular backend.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

DURATION = 3600
REVEAL = 600
REWARD_PER_ROUND = 1_000 * 10**18
SUPPLY = 1_000_000 * 10**18
FUNDING = 10_000 * 10**18
OPEN_FREE = (False, 0, 0)  # the constructor's AdmissionRules: anyone registers, no bond


def raw_cid(content: bytes, codec: int = 0x55) -> bytes:
    """Binary CIDv1 (sha2-256) of content, as the contract stores it."""
    return bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(content).digest()


def commitment(name: str) -> bytes:
    """A dataset manifest digest (what a client passes to ``register``)."""
    return hashlib.sha256(f"dataset:{name}".encode()).digest()


def bound(client: Any, digest: bytes) -> bytes:
    """The dataset commitment the contract stores: ``keccak256(abi.encode(client, digest))``."""
    return keccak(abi_encode(["address", "bytes32"], [str(client.address), digest]))


def update_commitment(client: Any, round_number: int, cid: bytes, num_samples: int, salt: bytes) -> bytes:
    """``keccak256(abi.encode(client, round, cid, numSamples, salt))``, computed off chain."""
    return keccak(
        abi_encode(
            ["address", "uint256", "bytes", "uint64", "bytes32"],
            [str(client.address), round_number, cid, num_samples, salt],
        )
    )


def salt_of(client: Any, round_number: int) -> bytes:
    return hashlib.sha256(f"salt {client.address} {round_number}".encode()).digest()


INITIAL_CID = raw_cid(b"initial global adapter")


@pytest.fixture
def owner(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture
def oracle(accounts: Any) -> Any:
    return accounts[1]


@pytest.fixture
def clients(accounts: Any) -> list[Any]:
    return [accounts[i] for i in range(2, 7)]


@pytest.fixture
def outsider(accounts: Any) -> Any:
    return accounts[8]


@pytest.fixture
def token(project: Any, owner: Any) -> Any:
    return owner.deploy(project.FLBRewardToken, owner, SUPPLY)


def deploy_coordinator(
    project: Any,
    owner: Any,
    oracle: Any,
    token: Any,
    funding: int = FUNDING,
    cohort_size: int = 0,
    admission: tuple[bool, int, int] = OPEN_FREE,
) -> Any:
    coordinator = owner.deploy(
        project.FLBCoordinator,
        token,
        owner,
        oracle,
        INITIAL_CID,
        DURATION,
        REVEAL,
        REWARD_PER_ROUND,
        cohort_size,
        admission,
    )
    if funding:
        token.approve(coordinator, funding, sender=owner)
        coordinator.fundRewards(funding, sender=owner)
    return coordinator


@pytest.fixture
def coordinator(project: Any, owner: Any, oracle: Any, token: Any) -> Any:
    return deploy_coordinator(project, owner, oracle, token)


@pytest.fixture
def registered(coordinator: Any, clients: list[Any]) -> list[Any]:
    """Three registered clients."""
    for i, client in enumerate(clients[:3]):
        coordinator.register(commitment(f"client{i}"), sender=client)
    return clients[:3]


@pytest.fixture(autouse=True)
def _time_travel_on_anvil(chain: Any) -> None:
    """Let `chain.mine(deltatime=...)` drive deadlines on anvil as on the embedded chain."""
    from tests.fixtures.devnode import enable_time_travel

    if chain.provider.name != "test":
        enable_time_travel(chain.provider)


@pytest.fixture
def system(project: Any, accounts: Any, owner: Any, oracle: Any, token: Any) -> Any:
    """A settled coordinator (see tests/contracts/settlement_setup.py)."""
    from tests.contracts.settlement_setup import build_system

    return build_system(project, accounts, owner, oracle, token)
