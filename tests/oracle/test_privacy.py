"""Server-side DP through the oracle: epsilon goes into the report and on chain, verify-round says
what it cannot recompute, and a privacy budget stops a round that would overspend it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flb_dapp.aggregation import PrivacyAccountant, PrivacyEvent
from flb_dapp.audit import load_report, verify_round
from flb_dapp.exceptions import PrivacyBudgetExceededError
from tests.fixtures.federation import build_federation

pytestmark = pytest.mark.slow
DP = {"name": "fedavg", "dp": "fixed", "clip_norm": 0.5, "noise_multiplier": 1.2}


def test_dp_round_records_epsilon_and_verifies_all_but_the_noise(tmp_path: Path, accounts: Any) -> None:
    federation = build_federation(tmp_path, accounts, steps=5, strategy=DP)
    processed = federation.run_round()
    info = federation.coordinator.round(1)
    report = load_report(federation.store, info.report_cid).model_dump()

    expected = PrivacyAccountant(delta=1e-5)
    expected.record(PrivacyEvent(noise_multiplier=1.2, num_clients=3))
    assert report["privacy"]["server_noise"] is True
    assert report["privacy"]["round_event"] == {
        "noise_multiplier": 1.2,
        "num_clients": 3,
        "sampling_rate": 1.0,
    }
    assert report["privacy"]["epsilon"] == pytest.approx(expected.epsilon())
    assert info.epsilon == round(expected.epsilon() * 1_000_000) / 1_000_000
    # NOTE: no secret seed configured: the noise came from OS entropy, so nobody can replay it.
    assert report["strategy"]["name"] == "dp-fixed-clipping" and report["strategy"]["seeded"] is False
    assert "seed" not in report["settings"]
    assert processed.global_model_cid == info.global_model_cid

    result = verify_round(
        federation.coordinator, federation.store, 1, federation.scorer, start_block=federation.record.block
    )
    assert result.ok and not result.exact
    assert set(result.checks) == {"inputs", "decisions", "rewards_tree", "report_global_cid", "metric"}
    assert "cannot be recomputed" in result.notes[0]


def test_privacy_budget_stops_the_round(tmp_path: Path, accounts: Any) -> None:
    federation = build_federation(tmp_path, accounts, steps=5, strategy=DP)
    federation.settings.oracle.privacy_budget = 0.5
    for i in range(3):
        federation.submit(i, federation.train(i))
    oracle = federation.oracle()
    with pytest.raises(
        PrivacyBudgetExceededError, match=r"privacy budget epsilon=0.5 at delta=1e-05 would be"
    ):
        oracle.run_once()
    assert not federation.coordinator.round(1).finalized
    # The service's tick does not crash: it pauses and says why.
    assert oracle.tick() == []
    assert oracle.paused and oracle.last_error.startswith("privacy budget epsilon=0.5")
    assert oracle.run_once() == []
