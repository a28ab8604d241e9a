"""A step that fails the same way twice pauses the oracle with its reason; the operator resumes it.

The first build retried such a step on every tick forever (the contract waited for a finalization
that never came). Here the evaluation fails deterministically, as a corrupt held-out set would:
two ticks record the same failure, the oracle pauses, its control endpoint and the REST API show
why, and once the cause is fixed the operator resumes it through the API and the round finalizes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from flb_api.core.config import ApiSettings, Secret
from flb_api.main import create_app

from flb_dapp.exceptions import EvaluationError
from oracle.control import ControlServer
from oracle.service import OracleService
from tests.fixtures.federation import build_federation

pytestmark = pytest.mark.slow
TOKEN = "oracle-control-token-for-the-pause-test"
OPERATOR = "operator-token-for-the-pause-test"


class BrokenThenFixedScorer:
    """The real scorer, failing while ``broken`` (a deterministic error, the same every time)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.broken = True

    def evaluate(self, adapter: Any) -> Any:
        if self.broken:
            raise EvaluationError("held-out record 17 has no answer")
        return self.inner.evaluate(adapter)


def test_a_repeated_step_failure_pauses_until_the_operator_resumes(tmp_path: Path, accounts: Any) -> None:
    federation = build_federation(tmp_path, accounts, steps=5)
    scorer = BrokenThenFixedScorer(federation.scorer)
    federation.scorer = scorer
    for i in range(3):
        federation.submit(i, federation.train(i))
    service = OracleService(federation.oracle(), federation.settings)
    control = ControlServer(
        "127.0.0.1",
        0,
        TOKEN,
        status=service.status,
        trigger=lambda: {"processed": service.tick()},
        set_paused=service.set_paused,
    ).start()
    api = ApiSettings(
        database=str(tmp_path / "api.sqlite"),
        oracle_control_url=control.url,
        operator_token=Secret("FLB_API_TOKEN", OPERATOR),
        oracle_token=Secret("FLB_ORACLE_TOKEN", TOKEN),
    )
    app = create_app(
        api, federation.coordinator, federation.store, start_block=federation.record.block, poll=False
    )
    auth = {"Authorization": f"Bearer {OPERATOR}"}
    try:
        assert service.tick() == [] and not service.oracle.paused  # the first failure: retried
        assert service.tick() == [] and service.oracle.paused  # the same failure again: paused
        reason = (
            "round 1, step evaluate: EvaluationError: held-out record 17 has no answer "
            "(failed 2 times in a row)"
        )
        assert service.status()["pause_reason"] == reason
        assert service.tick() == []  # paused: nothing runs, nothing loops
        with TestClient(app) as client:
            status = client.get("/operator/oracle/status", headers=auth).json()
            assert (status["oracle"]["status"], status["oracle"]["pause_reason"]) == ("paused", reason)
            scorer.broken = False  # the operator fixes the cause ...
            assert client.post("/operator/oracle/resume", headers=auth).status_code == 200  # ... and resumes
            status = client.get("/operator/oracle/status", headers=auth).json()
            assert (status["oracle"]["status"], status["oracle"]["pause_reason"]) == ("running", "")
        [done] = service.tick()
        assert done["round"] == 1 and federation.coordinator.round(1).finalized
    finally:
        control.stop()
