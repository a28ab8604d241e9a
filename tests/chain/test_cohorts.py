"""The SDK's view of cohorts: the round's draw, members re-derived off chain equal to the
contract's, the pre-flight check and the revert for a non-member, the admin setter, the deployment
option."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flb_dapp.chain.cohort import Cohort
from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.chain.deployment import DeploymentRecord, deploy_system
from flb_dapp.chain.reverts import translate_reverts
from flb_dapp.chain.types import FinalizeRequest
from flb_dapp.exceptions import ConfigError, CoordinatorCohortNotDrawable, CoordinatorNotInCohort
from flb_dapp.storage.cid import cid_of_bytes
from tests.chain.conftest import INITIAL, deploy

CID = cid_of_bytes(b"update")


def deploy_sampled(accounts: Any, chain: Any, size: int) -> Coordinator:
    """Cohort size ``size``; accounts[2:10] register in round 1, round 2 is open and sampled."""
    sdk, record = deploy(accounts, cohort_size=size)
    assert record.cohort_size == size
    for i in range(2, 10):
        sdk.register(accounts[i], bytes([i]) * 32)
    info = sdk.round(1)
    chain.mine(deltatime=info.reveal_deadline - chain.pending_timestamp + 1)
    sdk.finalize_round(accounts[1], FinalizeRequest(1, INITIAL, INITIAL, b"\x00" * 32, 0, 0.5))
    return sdk


def test_the_cohort_draw_and_its_members(accounts: Any, chain: Any) -> None:
    sdk = deploy_sampled(accounts, chain, 3)
    cohort = sdk.cohort(2)
    (drawn,) = sdk.cohort_draws(2)
    assert (cohort.size, cohort.population, cohort.seed_hex) == (3, 8, drawn.seed)
    assert (drawn.round, drawn.size, drawn.population) == (2, 3, 8)
    assert sdk.round(2).sampled and not sdk.round(1).sampled and sdk.cohort(1) == Cohort(1, 0, 0, 0)
    clients = [accounts[i].address for i in range(2, 10)]
    assert sdk.registration_order() == clients
    assert [sdk.client(c).registration_index for c in clients] == list(range(8))
    members = sdk.cohort_members(2)
    assert len(members) == 3
    assert [c in members for c in clients] == [sdk.is_cohort_member(2, c) for c in clients]
    assert sdk.cohort_members(1) == clients  # round 1 opened with nobody registered: everyone
    assert (sdk.registered_clients, sdk.pending_cohort_size) == (8, 3)


def test_a_non_member_is_refused_before_sending_and_by_the_contract(accounts: Any, chain: Any) -> None:
    sdk = deploy_sampled(accounts, chain, 3)
    members = set(sdk.cohort_members(2))
    outsider = next(accounts[i] for i in range(2, 10) if accounts[i].address not in members)
    expected = {"client": outsider.address, "round": 2, "cohort_size": 3, "population": 8}
    with pytest.raises(CoordinatorNotInCohort) as checked:
        sdk.commit_update(outsider, 2, CID, 10)
    with pytest.raises(CoordinatorNotInCohort) as reverted, translate_reverts():
        sdk.contract.commitUpdate(2, b"\x07" * 32, sender=outsider)
    for error in (checked.value, reverted.value):
        assert {name: getattr(error, name) for name in error.arguments} == expected
    assert "not in the cohort of round 2 (3 of 8 clients drawn)" in str(checked.value)


def test_the_cohort_committing_closes_the_commit_phase(accounts: Any, chain: Any) -> None:
    sdk = deploy_sampled(accounts, chain, 2)
    members = [a for a in (accounts[i] for i in range(2, 10)) if sdk.is_cohort_member(2, a.address)]
    entries = [(m, 2, cid_of_bytes(b"u%d" % i), 10 + i) for i, m in enumerate(members)]
    sdk.submit_all(entries)  # reveals need the phase closed: the two members' commits closed it
    info = sdk.round(2)
    assert (info.submissions, info.pending_reveals, sdk.round_phase(2)) == (2, 0, "due")


def test_the_admin_sets_the_cohort_size_of_later_rounds(accounts: Any, system: Any) -> None:
    sdk, record = system
    assert record.cohort_size == 0 and sdk.pending_cohort_size == 0
    receipt = sdk.set_cohort_size(accounts[0], 5)
    assert [(e.cohortSize, e.effectiveFromRound) for e in receipt.events] == [(5, 2)]
    assert sdk.pending_cohort_size == 5 and not sdk.round(1).sampled
    with pytest.raises(ValueError, match="cohort size"):
        sdk.set_cohort_size(accounts[0], -1)


def test_the_deployment_option_is_checked_and_recorded(accounts: Any, tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cohort size"):
        deploy_system(accounts[0], initial_model_cid=INITIAL, cohort_size=2**32)
    record = deploy_system(accounts[0], initial_model_cid=INITIAL, fund_amount=0, cohort_size=7)
    path = record.save(tmp_path / "record.json")
    assert json.loads(path.read_text())["cohort_size"] == 7
    assert DeploymentRecord.load(path).cohort_size == 7
    assert Coordinator(record.coordinator, record.block).pending_cohort_size == 7


def test_draw_cohort_samples_round_one_and_reports_a_second_draw(accounts: Any) -> None:
    sdk, _ = deploy(accounts, cohort_size=3)
    for i in range(2, 10):
        sdk.register(accounts[i], bytes([i]) * 32)
    sdk.draw_cohort(accounts[0])
    (drawn,) = sdk.cohort_draws(1)
    assert (drawn.round, drawn.size, drawn.population) == (1, 3, 8) and len(sdk.cohort_members(1)) == 3
    with pytest.raises(CoordinatorCohortNotDrawable) as raised:
        sdk.draw_cohort(accounts[0])
    assert (raised.value.round, raised.value.cohort_size, raised.value.registered_clients) == (1, 3, 8)
