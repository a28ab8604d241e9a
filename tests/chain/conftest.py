"""A freshly deployed coordinator (and its reward token) for each chain SDK test."""

from __future__ import annotations

from typing import Any

import pytest

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord, deploy_system
from flb_dapp.storage.cid import cid_of_bytes

INITIAL = cid_of_bytes(b"initial")


def deploy(
    accounts: Any, fund_amount: int = 5_000, cohort_size: int = 0, **options: Any
) -> tuple[Coordinator, DeploymentRecord]:
    """Admin accounts[0], oracle accounts[1]; rounds of 600 s with a budget of 1,000 tokens;
    ``options`` go to ``deploy_system`` (settlement rules, admission rules)."""
    record = deploy_system(
        accounts[0],
        initial_model_cid=INITIAL,
        oracle=accounts[1].address,
        round_duration=600,
        reward_per_round=1_000,
        token_supply=10**6,
        fund_amount=fund_amount,
        cohort_size=cohort_size,
        **options,
    )
    return Coordinator(record.coordinator, record.block), record


@pytest.fixture
def system(accounts: Any) -> tuple[Coordinator, DeploymentRecord]:
    return deploy(accounts)
