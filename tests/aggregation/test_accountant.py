"""The RDP accountant against dp-accounting used directly."""

from __future__ import annotations

import json
import math

import dp_accounting
import pytest
from dp_accounting import rdp

from flb_dapp.aggregation import PrivacyAccountant, PrivacyEvent, local_noise_multiplier
from flb_dapp.exceptions import AggregationError, PrivacyBudgetExceededError


def direct_epsilon(event: dp_accounting.DpEvent, count: int, delta: float) -> float:
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.SelfComposedDpEvent(event, count))
    return accountant.get_epsilon(delta)


@pytest.mark.parametrize(
    ("z", "q", "rounds"), [(1.1, 1.0, 1), (1.1, 1.0, 30), (0.8, 0.05, 500), (4.0, 0.5, 10)]
)
def test_epsilon_equals_dp_accounting(z, q, rounds):
    accountant = PrivacyAccountant(delta=1e-5)
    for _ in range(rounds):
        accountant.record(PrivacyEvent(noise_multiplier=z, num_clients=20, sampling_rate=q))
    gaussian = dp_accounting.GaussianDpEvent(z)
    event = gaussian if q == 1.0 else dp_accounting.PoissonSampledDpEvent(q, gaussian)
    assert accountant.epsilon() == pytest.approx(direct_epsilon(event, rounds, 1e-5), rel=1e-12)


def test_mixed_rounds_compose():
    accountant = PrivacyAccountant(delta=1e-6)
    accountant.record(PrivacyEvent(1.0, 10))
    accountant.record(PrivacyEvent(2.0, 10))
    accountant.record(PrivacyEvent(1.0, 10))
    direct = rdp.RdpAccountant()
    direct.compose(dp_accounting.GaussianDpEvent(1.0), 2)
    direct.compose(dp_accounting.GaussianDpEvent(2.0), 1)
    assert accountant.epsilon() == pytest.approx(direct.get_epsilon(1e-6), rel=1e-12)
    assert accountant.epsilon(delta=1e-3) < accountant.epsilon()


def test_local_dp_event_is_the_gaussian_mechanism_with_that_epsilon():
    sigma = local_noise_multiplier(1.0, 1e-5)
    assert dp_accounting.get_epsilon_gaussian(sigma, 1e-5) == pytest.approx(1.0, rel=1e-6)
    accountant = PrivacyAccountant(delta=1e-5)
    accountant.record_local_dp(epsilon=1.0)
    accountant.record_local_dp(epsilon=1.0)
    assert accountant.epsilon() == pytest.approx(
        direct_epsilon(dp_accounting.GaussianDpEvent(sigma), 2, 1e-5)
    )
    assert accountant.events[0] == {
        "kind": "local",
        "epsilon": 1.0,
        "delta": 1e-5,
        "noise_multiplier": sigma,
        "sampling_rate": 1.0,
    }


def test_state_survives_a_json_round_trip_with_the_same_epsilon():
    accountant = PrivacyAccountant(delta=1e-5)
    for z in (1.0, 1.2, 0.9):
        accountant.record(PrivacyEvent(z, 50, sampling_rate=0.1))
    accountant.record_local_dp(2.0)
    restored = PrivacyAccountant.from_state(json.loads(json.dumps(accountant.state())))
    assert restored.epsilon() == accountant.epsilon()
    assert restored.events == accountant.events


def test_no_events_spend_nothing_and_no_noise_spends_everything():
    accountant = PrivacyAccountant()
    assert accountant.epsilon() == 0.0
    accountant.record(PrivacyEvent(0.0, 5))
    assert math.isinf(accountant.epsilon())


def test_would_exceed_and_check_budget():
    accountant = PrivacyAccountant(delta=1e-5)
    event = PrivacyEvent(1.0, 10)
    for _ in range(3):
        accountant.record(event)
    spent = accountant.epsilon()
    after = accountant.epsilon(extra=[event])
    assert spent < after
    assert not accountant.would_exceed(after + 1e-9, event)
    assert accountant.would_exceed(after - 1e-9, event)
    assert not accountant.would_exceed(spent + 1e-9)
    with pytest.raises(
        PrivacyBudgetExceededError, match=r"privacy budget epsilon=.* would be exceeded: .* over 3 rounds"
    ):
        accountant.check_budget(spent + 1e-9, event)
    accountant.check_budget(after + 1, event)
    assert len(accountant.events) == 3  # checking never records


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda: PrivacyAccountant(delta=0), r"delta must be in \(0, 1\), got 0"),
        (
            lambda: PrivacyAccountant().record_local_dp(epsilon=0),
            "local DP epsilon must be a finite number > 0",
        ),
        (lambda: PrivacyAccountant(events=[{"kind": "weird"}]), "unknown privacy event kind 'weird'"),
        (lambda: PrivacyEvent(-1.0, 3), "noise_multiplier must be finite and >= 0, got -1.0"),
        (lambda: PrivacyEvent(1.0, 3, sampling_rate=0), r"sampling_rate must be in \(0, 1\], got 0"),
    ],
)
def test_validation(action, message):
    with pytest.raises(AggregationError, match=message):
        action()
