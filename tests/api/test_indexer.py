"""The indexer: catching up after downtime, outages of the node and the store, a changed chain."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from flb_api.core.db import Database
from flb_api.indexer import ChainHead, Indexer
from flb_api.main import create_app
from flb_api.reports import index_report

from flb_dapp.exceptions import ChainUnavailableError, StoreUnavailableError
from flb_dapp.report import ReportError, canonical_json
from tests.api.conftest import api_settings, make_indexer
from tests.api.federation import Federation


def snapshot(app: FastAPI) -> dict[str, Any]:
    """Every read endpoint's status and body, for whole-API comparisons."""
    out: dict[str, Any] = {}
    with TestClient(app) as client:

        def get(path: str) -> Any:
            reply = client.get(path)
            body = (
                reply.json()
                if reply.headers["content-type"].startswith("application/json")
                else reply.content
            )
            out[path] = (reply.status_code, body)
            return body

        get("/contract")
        rounds = get("/rounds?limit=100")["data"]
        for r in rounds:
            for suffix in ("", "/updates?limit=100", "/report"):
                get(f"/rounds/{r['round']}{suffix}")
        for c in get("/clients?limit=100")["data"]:
            get(f"/clients/{c['address']}")
            get(f"/clients/{c['address']}/proof")
        get("/leaderboard?limit=100")
        get("/models?limit=100")
        health = client.get("/health").json()
        out["indexed_block"] = health["indexed_block"]
    return out


def app_for(indexer: Indexer, tmp: Path) -> FastAPI:
    return create_app(api_settings(tmp), indexer=indexer, poll=False)


class FlakyHead(ChainHead):
    """The real chain, unless ``down``: then every read fails like an unreachable node."""

    def __init__(self, failures: int = 0) -> None:
        self.down = False
        self.failures = failures  # the next N calls fail

    def _check(self) -> None:
        if self.down or self.failures > 0:
            self.failures -= 1
            raise ChainUnavailableError("cannot reach the chain node: connection refused")

    def height(self) -> int:
        self._check()
        return super().height()


class FlakyStore:
    """A store that is unreachable while ``down``, or serves ``replace[cid]`` instead of the content."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = True
        self.replace: dict[str, bytes] = {}

    def get_bytes(self, cid: str, max_size: int | None = None, deadline_s: float | None = None) -> bytes:
        if self.down:
            raise StoreUnavailableError("IPFS node at http://127.0.0.1:5001 is unreachable")
        return self.replace.get(cid) or self.inner.get_bytes(cid, max_size, deadline_s)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="module")
def reference(app: FastAPI) -> dict[str, Any]:
    """The whole API over the session's index (synced once, after everything happened)."""
    return snapshot(app)


def test_catches_up_after_missing_a_round(
    federation: Federation, early_copy: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    early = make_indexer(federation, early_copy, batch_blocks=3)
    stale = snapshot(app_for(early, tmp_path))
    assert stale["/contract"][1]["current_round"] == 2
    assert [r["round"] for r in stale["/rounds?limit=100"][1]["data"]] == [2, 1]
    assert stale["/leaderboard?limit=100"][1]["round"] == 1
    result = early.sync()
    assert result.ranges >= 3 and result.reports == 1
    fresh = make_indexer(federation, tmp_path / "fresh.sqlite", start_block=0)
    assert fresh.sync().from_block == 0
    caught_up = snapshot(app_for(early, tmp_path))
    assert caught_up == snapshot(app_for(fresh, tmp_path))
    assert caught_up == reference


def test_survives_a_chain_outage(federation: Federation, tmp_path: Path, reference: dict[str, Any]) -> None:
    head = FlakyHead()
    indexer = make_indexer(federation, tmp_path / "i.sqlite", head=head)
    indexer.sync()
    app = app_for(indexer, tmp_path)
    head.down = True
    with pytest.raises(ChainUnavailableError):
        indexer.sync()
    with TestClient(app) as client:
        health = client.get("/health").json()
        assert health["status"] == "degraded"
        assert (
            health["last_error"] == "ChainUnavailableError: cannot reach the chain node: connection refused"
        )
        assert client.get("/rounds?limit=100").json() == reference["/rounds?limit=100"][1]  # reads go on
        assert "flb_api_index_errors_total 1" in client.get("/metrics").text.splitlines()
    head.down = False
    indexer.sync()
    assert snapshot(app) == reference
    with TestClient(app) as client:
        assert client.get("/health").json()["status"] == "ok"


def test_background_loop_retries_until_the_node_is_back(
    federation: Federation, tmp_path: Path, reference: dict[str, Any]
) -> None:
    head = FlakyHead(failures=3)
    indexer = make_indexer(federation, tmp_path / "i.sqlite", head=head)
    app = create_app(api_settings(tmp_path, poll_interval_s=0.01), indexer=indexer, poll=True)
    with TestClient(app) as client:  # the lifespan starts the loop
        deadline = time.monotonic() + 60
        while indexer.status.syncs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health").json()["status"] == "ok"
    assert indexer._thread is None  # the lifespan stopped it
    assert indexer.status.errors == 3 and indexer.status.syncs >= 1
    assert snapshot(app) == reference


def test_outage_in_the_middle_of_a_catch_up(
    federation: Federation,
    early_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reference: dict[str, Any],
) -> None:
    early = make_indexer(federation, early_copy, batch_blocks=3)
    checkpoint = early.indexed_block
    assert checkpoint is not None
    real = federation.coordinator.updates
    calls = {"n": 0}

    def flaky_updates(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ChainUnavailableError("node restarting")
        return real(*args, **kwargs)

    monkeypatch.setattr(federation.coordinator, "updates", flaky_updates)
    with pytest.raises(ChainUnavailableError):
        early.sync()
    assert early.indexed_block == checkpoint + 3  # the first range committed, the second did not
    early.sync()
    assert snapshot(app_for(early, tmp_path)) == reference


def test_store_outage_leaves_reports_pending(
    federation: Federation, tmp_path: Path, reference: dict[str, Any]
) -> None:
    store = FlakyStore(federation.store)
    indexer = Indexer(
        Database(tmp_path / "i.sqlite"),
        federation.coordinator,
        store,  # type: ignore[arg-type]
        start_block=federation.record.block,
        deployment_block=federation.record.block,
        network=federation.record.network,
    )
    assert indexer.sync().reports == 0
    app = app_for(indexer, tmp_path)
    client_address = federation.clients[1].address
    with TestClient(app) as client:
        assert client.get("/rounds/1").json()["report_status"] == "pending"
        assert (
            client.get("/rounds/1").json()["metric"] == federation.coordinator.round(1).metric
        )  # chain facts
        reply = client.get("/rounds/1/report")
        assert reply.status_code == 503 and "unreachable" in reply.json()["detail"]
        assert client.get(f"/clients/{client_address}/proof").status_code == 503
        assert client.get("/health").json()["pending_reports"] == 2
        assert client.get("/leaderboard").json() == {"round": None, "data": [], "count": 0}
    store.down = False
    assert indexer.sync().reports == 2
    assert snapshot(app) == reference


def test_a_report_that_contradicts_the_chain_is_not_indexed(federation: Federation, tmp_path: Path) -> None:
    store = FlakyStore(federation.store)
    store.down = False
    report_cid = federation.coordinator.round(1).report_cid
    forged = federation.outcomes[1].report.to_dict()
    forged["rewards"] = {**forged["rewards"], "root": "0x" + "11" * 32}
    store.replace[report_cid] = canonical_json(forged)
    indexer = Indexer(
        Database(tmp_path / "i.sqlite"),
        federation.coordinator,
        store,  # type: ignore[arg-type]
        start_block=federation.record.block,
    )
    indexer.sync()
    with TestClient(app_for(indexer, tmp_path)) as client:
        body = client.get("/rounds/1").json()
        assert body["report_status"] == "invalid" and "rewards root 0x1111" in body["report_error"]
        assert body["metrics"] is None and body["accepted"] is None
        assert client.get("/rounds/1/updates").json()["data"][0]["status"] == "pending"
        assert client.get("/rounds/2").json()["report_status"] == "indexed"


def test_rebuilds_when_the_chain_changes_under_it(
    federation: Federation, tmp_path: Path, reference: dict[str, Any]
) -> None:
    indexer = make_indexer(federation, tmp_path / "i.sqlite")
    indexer.sync()
    with indexer.db.transaction() as conn:  # as if the checkpoint's block had been replaced (reorg)
        Database.set_meta(conn, "last_block_hash", "0x" + "00" * 32)
        conn.execute("DELETE FROM clients")
    result = indexer.sync()
    assert result.rebuilt and result.from_block == federation.record.block
    assert snapshot(app_for(indexer, tmp_path)) == reference


def test_a_cache_of_another_coordinator_is_dropped(federation: Federation, tmp_path: Path) -> None:
    db = Database(tmp_path / "i.sqlite")
    with db.transaction() as conn:
        Database.set_meta(conn, "coordinator", "0x" + "ab" * 20)
        Database.set_meta(conn, "last_block", 99_999)
    indexer = make_indexer(federation, tmp_path / "i.sqlite")
    assert indexer.indexed_block is None
    indexer.sync()
    assert indexer.db.get_meta("coordinator") == federation.coordinator.address


def test_report_checks(federation: Federation) -> None:
    report = federation.outcomes[1].report
    info = federation.coordinator.round(1)
    raw = report.to_json()
    indexed = index_report(raw, 1, info.global_model_cid, info.rewards_root)
    assert (indexed.accepted, indexed.rejected) == (3, 0)
    assert [rank for *_, rank in indexed.rewards] == list(range(1, len(indexed.rewards) + 1))
    with pytest.raises(ReportError, match="about round 1, not round 2"):
        index_report(raw, 2, info.global_model_cid, info.rewards_root)
    with pytest.raises(ReportError, match="names global model"):
        index_report(raw, 1, info.report_cid, info.rewards_root)
    with pytest.raises(ReportError, match="not JSON"):
        index_report(b"{oops", 1, info.global_model_cid, info.rewards_root)
    unbounded = json.loads(raw)
    unbounded["privacy"]["epsilon"] = "inf"
    privacy = index_report(canonical_json(unbounded), 1, info.global_model_cid, info.rewards_root).privacy
    assert (privacy["epsilon"], privacy["unbounded"]) == (None, True)
