"""Operator endpoints: bearer token refusals, and forwarding to the oracle's control server.

The control server here is the oracle's real one (``oracle.control.ControlServer``) with stand-in
callbacks in place of the oracle's scheduler: the test checks what the API sends, not the oracle.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flb_api.core.config import ApiSettings, Secret
from flb_api.main import create_app

from flb_dapp.config import FLBSettings
from tests.api.conftest import OPERATOR_TOKEN, ORACLE_TOKEN, api_settings

ACTIONS = ("trigger", "pause", "resume")


class StandInOracle:
    """Records what the control server was asked to do."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.paused = False

    def status(self) -> dict[str, Any]:
        return {"paused": self.paused, "last_round": 2, "last_error": ""}

    def trigger(self) -> dict[str, Any]:
        self.calls.append("trigger")
        return {"processed": [], **self.status()}

    def set_paused(self, paused: bool) -> None:
        self.calls.append("pause" if paused else "resume")
        self.paused = paused


@pytest.fixture
def stand_in() -> Iterator[tuple[StandInOracle, str]]:
    control = pytest.importorskip("oracle.control")
    oracle = StandInOracle()
    server = control.ControlServer(
        "127.0.0.1",
        0,
        ORACLE_TOKEN,
        status=oracle.status,
        trigger=oracle.trigger,
        set_paused=oracle.set_paused,
    ).start()
    try:
        yield oracle, server.url
    finally:
        server.stop()


def _app(base: FastAPI, tmp: Path, **changes: Any) -> FastAPI:
    return create_app(api_settings(tmp, **changes), indexer=base.state.indexer, poll=False)


@pytest.mark.parametrize("action", ACTIONS)
def test_refuses_without_a_token(client: TestClient, action: str) -> None:
    reply = client.post(f"/operator/oracle/{action}")
    assert reply.status_code == 401
    assert reply.headers["www-authenticate"] == "Bearer"
    assert "missing operator token" in reply.json()["detail"]


@pytest.mark.parametrize("action", ACTIONS)
def test_refuses_a_wrong_token(client: TestClient, action: str) -> None:
    for token in ("x" * len(OPERATOR_TOKEN), OPERATOR_TOKEN[:-1], OPERATOR_TOKEN + "0"):
        reply = client.post(f"/operator/oracle/{action}", headers={"Authorization": f"Bearer {token}"})
        assert (reply.status_code, reply.json()) == (403, {"detail": "wrong operator token"})
    basic = client.post(f"/operator/oracle/{action}", headers={"Authorization": f"Basic {OPERATOR_TOKEN}"})
    assert basic.status_code == 401


@pytest.mark.parametrize("value", [None, "", "changeme", "short"])
def test_unset_or_placeholder_token_disables_operator_endpoints(
    app: FastAPI, federation_dir: Path, value: str | None
) -> None:
    environ = {} if value is None else {"FLB_API_TOKEN": value}
    settings = ApiSettings.from_settings(
        FLBSettings(api={"database": str(federation_dir / "x.sqlite")}), environ
    )
    assert settings.operator_token.value is None
    disabled = create_app(settings, indexer=app.state.indexer, poll=False)
    with TestClient(disabled) as client:
        reply = client.post("/operator/oracle/trigger", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        assert reply.status_code == 503
        assert reply.json()["detail"].startswith(
            "operator endpoints are disabled: environment variable FLB_API_TOKEN"
        )
        assert client.get("/rounds/2").status_code == 200  # reads keep working


def test_token_names_come_from_configuration(federation_dir: Path) -> None:
    settings = FLBSettings(
        api={"operator_token_env": "MY_API_TOKEN"}, oracle={"control_token_env": "MY_ORACLE"}
    )
    api = ApiSettings.from_settings(settings, {"MY_API_TOKEN": OPERATOR_TOKEN, "MY_ORACLE": ORACLE_TOKEN})
    assert (api.operator_token.value, api.oracle_token.value) == (OPERATOR_TOKEN, ORACLE_TOKEN)
    assert OPERATOR_TOKEN not in repr(api)


@pytest.mark.parametrize("action", ACTIONS)
def test_forwards_to_the_oracle(
    app: FastAPI, federation_dir: Path, stand_in: tuple[StandInOracle, str], action: str
) -> None:
    oracle, url = stand_in
    with TestClient(_app(app, federation_dir, oracle_control_url=url)) as client:
        reply = client.post(
            f"/operator/oracle/{action}", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "action": action,
        "oracle": {**oracle.status(), **({"processed": []} if action == "trigger" else {})},
    }
    assert oracle.calls == [action]
    assert oracle.paused is (action == "pause")


def test_forwarding_failures_are_502_or_503(
    app: FastAPI, federation_dir: Path, stand_in: tuple[StandInOracle, str]
) -> None:
    oracle, url = stand_in
    auth = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    with TestClient(_app(app, federation_dir)) as client:
        reply = client.post("/operator/oracle/trigger", headers=auth)
        assert reply.status_code == 503 and "api.oracle_control_url" in reply.json()["detail"]
    wrong = Secret("FLB_ORACLE_TOKEN", "a-different-oracle-token-0123")
    with TestClient(_app(app, federation_dir, oracle_control_url=url, oracle_token=wrong)) as client:
        reply = client.post("/operator/oracle/pause", headers=auth)
        assert reply.status_code == 502 and "refused the API's token (403)" in reply.json()["detail"]
    unset = Secret("FLB_ORACLE_TOKEN", None, "environment variable FLB_ORACLE_TOKEN is unset")
    with TestClient(_app(app, federation_dir, oracle_control_url=url, oracle_token=unset)) as client:
        assert client.post("/operator/oracle/pause", headers=auth).status_code == 503
    from tests.fixtures.processes import free_port

    with TestClient(
        _app(app, federation_dir, oracle_control_url=f"http://127.0.0.1:{free_port()}")
    ) as client:
        reply = client.post("/operator/oracle/resume", headers=auth)
        assert reply.status_code == 502 and "unreachable" in reply.json()["detail"]
    assert oracle.calls == []
