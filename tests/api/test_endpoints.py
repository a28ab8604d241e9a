"""Every read endpoint against a real federation: exact values from the chain and the reports."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from flb_api.main import create_app

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.merkle import RewardsTree, verify_proof
from flb_dapp.storage.cid import cid_of_bytes
from tests.api.conftest import api_settings
from tests.api.federation import Federation


def _report(fed: Federation, number: int) -> dict[str, Any]:
    """The report exactly as stored (canonical JSON), as the API should read it."""
    return json.loads(fed.outcomes[number].report.to_json())


# --- /contract ---------------------------------------------------------------------------------------
def test_contract_matches_the_chain(client: TestClient, federation: Federation, chain: Any) -> None:
    sdk: Coordinator = federation.coordinator
    funded, allocated, claimed = sdk.reward_totals
    body = client.get("/contract").json()
    assert body == {
        "address": sdk.address,
        "chain_id": chain.chain_id,
        "network": federation.record.network,
        "deployment_block": federation.record.block,
        "token": federation.record.token,
        "token_symbol": "FLBR",
        "token_decimals": 18,
        "round_duration": sdk.round_duration,
        "reward_per_round": str(sdk.reward_per_round),
        "current_round": 3,
        "current_round_deadline": sdk.round(3).deadline,
        "active_clients": sdk.active_clients,
        "registered_clients": 4,
        "finalized_rounds": 2,
        "paused": False,
        "rewards": {"funded": str(funded), "allocated": str(allocated), "claimed": str(claimed)},
        "admission": {"mode": "open", "registration_bond": "0", "exit_delay": 86_400, "bonds_held": "0"},
        "settlement": None,
        "initial_model_cid": federation.record.initial_model_cid,
        "latest_global_model_cid": sdk.latest_global_model_cid,
        "epsilon": sdk.round(2).epsilon,
        "chain_time": chain.blocks.head.timestamp,
        "indexed_block": chain.blocks.height,
    }
    assert allocated == sum(o.rewards.total for o in federation.outcomes.values())
    assert claimed == sum(sdk.client(r.client).claimed for r in sdk.registrations()) > 0


# --- /rounds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("number", [1, 2])
def test_finalized_round_matches_chain_and_report(
    client: TestClient, federation: Federation, number: int
) -> None:
    sdk = federation.coordinator
    info = sdk.round(number)
    [event] = sdk.finalizations(round_number=number)
    report = _report(federation, number)
    decisions = report["inputs"]
    body = client.get(f"/rounds/{number}").json()
    assert body == {
        "round": number,
        "status": "finalized",
        "deadline": info.deadline,
        "finalized_at": info.finalized_at,
        "submissions": info.submissions,
        "accepted": sum(d["accepted"] for d in decisions),
        "rejected": sum(not d["accepted"] for d in decisions),
        "metric": info.metric,
        "epsilon": info.epsilon,
        "global_model_cid": info.global_model_cid,
        "previous_global_model_cid": report["previous_global_model_cid"],
        "report_cid": info.report_cid,
        "report_status": "indexed",
        "report_error": None,
        "rewards_root": info.rewards_root,
        "round_rewards": str(event.round_rewards),
        "metrics": report["metrics"],
        "privacy": {
            "epsilon": report["privacy"]["epsilon"],
            "unbounded": False,
            "delta": report["privacy"]["delta"],
            "server_noise": True,
            "noise_multiplier": report["privacy"]["round_event"]["noise_multiplier"],
        },
        "strategy": report["strategy"],
        "block_number": event.block_number,
        "transaction_hash": event.transaction_hash,
        "settlement": None,
        "links": {"report": f"/rounds/{number}/report", "model": f"/models/{info.global_model_cid}"},
    }
    assert body["metric"] == pytest.approx(report["metrics"]["after"]["accuracy"], abs=1e-6)  # ppm on chain
    assert body["privacy"]["epsilon"] == pytest.approx(info.epsilon, abs=1e-6)


def test_open_round(client: TestClient, federation: Federation) -> None:
    info = federation.coordinator.round(3)
    body = client.get("/rounds/3").json()
    assert (body["status"], body["deadline"], body["submissions"]) == ("open", info.deadline, 1)
    assert body["finalized_at"] is None and body["global_model_cid"] is None and body["metrics"] is None
    assert body["links"] == {"report": None, "model": None}
    [update] = client.get("/rounds/3/updates").json()["data"]
    assert (update["client"], update["cid"], update["num_samples"], update["status"]) == (
        federation.clients[0].address,
        federation.pending_cid,
        42,
        "pending",
    )
    assert update["contribution"] is None and update["reward"] is None


def test_rounds_pagination_and_order(client: TestClient) -> None:
    everything = client.get("/rounds").json()
    assert everything["count"] == 3
    assert [r["round"] for r in everything["data"]] == [3, 2, 1]
    assert [r["round"] for r in client.get("/rounds", params={"order": "asc"}).json()["data"]] == [1, 2, 3]
    page = client.get("/rounds", params={"limit": 1, "offset": 1}).json()
    assert page == {"data": [everything["data"][1]], "count": 3}
    assert client.get("/rounds", params={"offset": 10}).json() == {"data": [], "count": 3}
    for bad in ({"limit": 0}, {"offset": -1}, {"order": "sideways"}, {"limit": 2**64}):
        assert client.get("/rounds", params=bad).status_code == 422


def test_page_size_is_capped(app: Any, client: TestClient, federation_dir: Any) -> None:
    everyone = client.get("/clients").json()["data"]
    small = create_app(api_settings(federation_dir, max_page_size=2), indexer=app.state.indexer, poll=False)
    with TestClient(small) as capped:
        body = capped.get("/rounds", params={"limit": 50}).json()
        assert (len(body["data"]), body["count"]) == (2, 3)
        assert capped.get("/clients", params={"offset": 2}).json() == {"data": everyone[2:4], "count": 4}


@pytest.mark.parametrize("number", [1, 2])
def test_round_updates_match_events_and_report(
    client: TestClient, federation: Federation, number: int
) -> None:
    events = federation.coordinator.updates(round_number=number)
    decisions = {d["client"]: d for d in _report(federation, number)["inputs"]}
    body = client.get(f"/rounds/{number}/updates").json()
    assert body["count"] == len(events) == len(decisions)
    for got, event in zip(body["data"], events, strict=True):
        d = decisions[event.client]
        assert got == {
            "round": number,
            "client": event.client,
            "cid": event.cid,
            "num_samples": event.num_samples,
            "status": "accepted" if d["accepted"] else "rejected",
            "reason": d["reason"],
            "norm": d["norm"],
            "weight": d["weight"],
            "excluded": d["excluded"],
            "contribution": d["contribution"],
            "reward": str(d["reward"]),
            "block_number": event.block_number,
            "transaction_hash": event.transaction_hash,
            "download": f"/models/{event.cid}",
        }
    page = client.get(f"/rounds/{number}/updates", params={"limit": 1, "offset": 1}).json()
    assert page == {"data": [body["data"][1]], "count": len(events)}


def test_rejected_update_says_why(client: TestClient, federation: Federation) -> None:
    rows = {u["client"]: u for u in client.get("/rounds/2/updates").json()["data"]}
    bad = rows[federation.latecomer.address]
    assert bad["status"] == "rejected" and bad["reason"].startswith("invalid adapter")
    assert (bad["reward"], bad["contribution"]) == ("0", 0.0)


def test_report_is_served_byte_for_byte(client: TestClient, federation: Federation) -> None:
    for number in (1, 2):
        reply = client.get(f"/rounds/{number}/report")
        cid = federation.coordinator.round(number).report_cid
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
        assert cid_of_bytes(reply.content) == cid == reply.headers["x-content-cid"]
        assert reply.content == federation.store.get_bytes(cid)
        assert reply.json() == _report(federation, number)


def test_rewards_tree_is_the_dump_stored_beside_the_report(
    client: TestClient, federation: Federation
) -> None:
    for number in (1, 2):
        reply = client.get(f"/rounds/{number}/rewards-tree")
        report = federation.outcomes[number].report
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/json"
        # The same bytes the oracle stored under the CID its report names.
        assert cid_of_bytes(reply.content) == report.rewards.tree_cid == reply.headers["x-content-cid"]
        assert reply.content == federation.store.get_bytes(report.rewards.tree_cid)
        tree = RewardsTree.from_standard_dump(reply.json())
        assert tree.root_hex == federation.coordinator.round(number).rewards_root
        assert tree.amounts == {c: a for c, a in report.rewards.cumulative.items() if a > 0}
    assert client.get("/rounds/3/rewards-tree").json() == {
        "detail": "Round 3 is still open; it has no rewards tree yet"
    }


# --- /clients, /leaderboard, proofs ---------------------------------------------------------------------
def test_clients_match_the_chain(client: TestClient, federation: Federation) -> None:
    sdk = federation.coordinator
    registrations = sdk.registrations()
    cumulative = federation.outcomes[2].rewards.cumulative
    body = client.get("/clients").json()
    assert body["count"] == len(registrations) == 4
    assert [c["address"] for c in body["data"]] == [r.client for r in registrations]
    for got, registration in zip(body["data"], registrations, strict=True):
        info = sdk.client(registration.client)
        updates = [u for n in (1, 2, 3) for u in sdk.updates(round_number=n) if u.client == info.address]
        decisions = [
            d for n in (1, 2) for d in _report(federation, n)["inputs"] if d["client"] == info.address
        ]
        earned = cumulative.get(info.address, 0)
        assert got == {
            "address": info.address,
            "dataset_commitment": info.dataset_commitment,
            "registered_round": registration.round,
            "registered_block": registration.block_number,
            "banned": info.banned,
            "exited": False,
            "bond": "0",
            "bond_released_at": 0,
            "submissions": len(updates),
            "accepted": sum(d["accepted"] for d in decisions),
            "rejected": sum(not d["accepted"] for d in decisions),
            "contribution_total": pytest.approx(sum(d["contribution"] for d in decisions)),
            "cumulative_reward": str(earned),
            "claimed": str(info.claimed),
            "claimable": str(earned - info.claimed),
        }
    assert [c["registered_round"] for c in body["data"]] == [1, 1, 1, 2]
    assert [c["banned"] for c in body["data"]] == [False, False, False, True]


def test_client_detail_lists_every_round(client: TestClient, federation: Federation) -> None:
    address = federation.clients[0].address
    body = client.get(f"/clients/{address.lower()}").json()  # any case is accepted
    assert body["address"] == address
    rounds = body["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    for entry in rounds[:2]:
        outcome = federation.outcomes[entry["round"]]
        [decision] = [d for d in outcome.report.model_dump()["inputs"] if d["client"] == address]
        assert entry["cid"] == decision["cid"] and entry["num_samples"] == decision["num_samples"]
        assert entry["contribution"] == decision["contribution"]
        assert entry["reward"] == str(outcome.rewards.round_rewards[address])
        assert entry["cumulative_reward"] == str(outcome.rewards.cumulative[address])
        assert entry["status"] == "accepted" and entry["download"] == f"/models/{decision['cid']}"
    assert rounds[2]["status"] == "pending" and rounds[2]["cumulative_reward"] is None


def test_leaderboard_ranks_cumulative_rewards(client: TestClient, federation: Federation) -> None:
    outcome = federation.outcomes[2]
    expected = sorted(outcome.rewards.cumulative.items(), key=lambda kv: (-kv[1], kv[0].lower()))
    body = client.get("/leaderboard").json()
    assert body["round"] == 2 and body["count"] == len(expected)
    assert [(e["client"], e["cumulative_reward"]) for e in body["data"]] == [(c, str(a)) for c, a in expected]
    assert [e["rank"] for e in body["data"]] == list(range(1, len(expected) + 1))
    for entry in body["data"]:
        claimed = federation.coordinator.client(entry["client"]).claimed
        assert entry["claimed"] == str(claimed)
        assert entry["unclaimed"] == str(int(entry["cumulative_reward"]) - claimed)
        assert entry["round_reward"] == str(outcome.rewards.round_rewards.get(entry["client"], 0))
    assert client.get("/leaderboard", params={"limit": 1, "offset": 1}).json()["data"] == body["data"][1:2]


def test_proof_claims_on_chain(client: TestClient, federation: Federation, accounts: Any) -> None:
    sdk = federation.coordinator
    tree = federation.outcomes[2].rewards.tree
    unpaid = [c for c in federation.clients if sdk.client(c.address).claimed < tree.amounts.get(c.address, 0)]
    assert unpaid, "the fixture leaves at least one client with something to claim"
    account = unpaid[0]
    body = client.get(f"/clients/{account.address}/proof").json()
    assert body == {
        "client": account.address,
        "round": 2,
        "rewards_root": sdk.round(2).rewards_root,
        "cumulative_amount": str(tree.amounts[account.address]),
        "claimed": str(sdk.client(account.address).claimed),
        "claimable": str(tree.amounts[account.address] - sdk.client(account.address).claimed),
        "proof": tree.proof_hex(account.address),
    }
    proof = [bytes.fromhex(p[2:]) for p in body["proof"]]
    assert verify_proof(
        bytes.fromhex(body["rewards_root"][2:]), account.address, int(body["cumulative_amount"]), proof
    )
    before = sdk.token_balance(account.address)
    sdk.claim(account, int(body["cumulative_amount"]), proof)  # reverted after the test by Ape's isolation
    assert sdk.token_balance(account.address) - before == int(body["claimable"])


def test_proof_refusals(client: TestClient, federation: Federation) -> None:
    outsider, latecomer = federation.outsider.address, federation.latecomer.address
    assert client.get(f"/clients/{outsider}/proof").json()["detail"] == (
        f"Client {outsider} has no rewards in the tree of round 2"
    )
    assert client.get(f"/clients/{latecomer}/proof").status_code == 404  # in the report with 0
    assert client.get("/clients/0x1234/proof").status_code == 422


# --- downloads --------------------------------------------------------------------------------------------
def test_latest_model_download_is_verified(client: TestClient, federation: Federation) -> None:
    cid = federation.coordinator.latest_global_model_cid
    reply = client.get("/models/latest")
    assert reply.status_code == 200
    assert cid_of_bytes(reply.content) == cid == reply.headers["x-content-cid"]
    assert reply.content == federation.store.get_bytes(cid)
    assert int(reply.headers["content-length"]) == len(reply.content)
    assert (
        reply.headers["content-disposition"] == f'attachment; filename="flb-global-round-2-{cid}.safetensors"'
    )
    assert reply.headers["etag"] == f'"{cid}"'
    assert client.get("/models/latest", headers={"If-None-Match": f'"{cid}"'}).status_code == 304


def test_every_cid_downloads(client: TestClient, federation: Federation) -> None:
    models = client.get("/models").json()
    assert [(m["round"], m["kind"]) for m in models["data"]] == [(2, "global"), (1, "global"), (0, "initial")]
    assert models["data"][-1]["cid"] == federation.record.initial_model_cid
    for model in models["data"]:
        reply = client.get(model["download"])
        assert cid_of_bytes(reply.content) == model["cid"]
        assert model["filename"] == f"flb-global-round-{model['round']}-{model['cid']}.safetensors"
        assert model["filename"] in reply.headers["content-disposition"]
    update = client.get("/rounds/1/updates").json()["data"][0]
    reply = client.get(update["download"])
    assert cid_of_bytes(reply.content) == update["cid"]
    assert (
        f"flb-update-round-1-{update['client']}-{update['cid']}.safetensors"
        in reply.headers["content-disposition"]
    )


def test_download_refusals(
    app: Any, client: TestClient, federation: Federation, federation_dir: Any, tmp_path: Any
) -> None:
    unknown = cid_of_bytes(b"never published")
    assert client.get(f"/models/{unknown}").json() == {"detail": f"Model {unknown} not found"}
    assert client.get("/models/not-a-cid").status_code == 404
    tiny = create_app(
        api_settings(federation_dir, max_download_bytes=100), indexer=app.state.indexer, poll=False
    )
    with TestClient(tiny) as limited:
        reply = limited.get("/models/latest")
        assert reply.status_code == 413 and "download limit of 100 bytes" in reply.json()["detail"]
    from flb_dapp.storage.local import LocalStore

    app_without_content = create_app(api_settings(federation_dir), indexer=app.state.indexer, poll=False)
    app_without_content.state.store = LocalStore(tmp_path / "empty")
    with TestClient(app_without_content) as empty:
        assert "store does not hold it" in empty.get("/models/latest").json()["detail"]


def test_downloads_beyond_the_concurrency_cap_get_503(app: Any, federation_dir: Any) -> None:
    # Each download hashes the whole file first; a flood of them must not take every thread.
    capped = create_app(
        api_settings(federation_dir, max_concurrent_downloads=2), indexer=app.state.indexer, poll=False
    )
    with TestClient(capped) as client:
        slots = capped.state.downloads
        assert slots.acquire(blocking=False) and slots.acquire(blocking=False)  # two downloads in flight
        reply = client.get("/models/latest")
        assert reply.status_code == 503 and reply.headers["retry-after"] == "1"
        assert reply.json() == {"detail": "2 downloads are already running; retry shortly"}
        slots.release()
        assert client.get("/models/latest").status_code == 200
        assert client.get("/models/latest").status_code == 200  # the slot came back after sending
        slots.release()


# --- 404s, health, metrics, docs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "detail"),
    [
        ("/rounds/7", "Round 7 not found"),
        ("/rounds/0", "Round 0 not found"),
        ("/rounds/7/updates", "Round 7 not found"),
        ("/rounds/7/report", "Round 7 not found"),
        ("/rounds/3/report", "Round 3 is still open; it has no report yet"),
        (
            "/clients/0x0000000000000000000000000000000000000001",
            "Client 0x0000000000000000000000000000000000000001 not found",
        ),
    ],
)
def test_not_found(client: TestClient, path: str, detail: str) -> None:
    reply = client.get(path)
    assert (reply.status_code, reply.json()) == (404, {"detail": detail})


def test_out_of_range_numbers_are_422(client: TestClient) -> None:
    assert client.get(f"/rounds/{2**64}").status_code == 422
    assert client.get("/rounds/-1").status_code == 422
    assert client.get("/clients/not-an-address").status_code == 422


def test_health_and_metrics(client: TestClient, chain: Any) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["last_error"] is None
    assert health["indexed_block"] == health["chain_head"] == chain.blocks.height
    assert (health["lag_blocks"], health["pending_reports"]) == (0, 0)
    client.get("/rounds/2")
    text = client.get("/metrics").text
    lines = set(text.splitlines())
    assert f"flb_api_indexed_block {chain.blocks.height}" in lines
    assert {
        "flb_api_rounds_finalized 2",
        "flb_api_clients 4",
        "flb_api_updates 8",
        "flb_api_claims 2",
    } <= lines
    assert "# TYPE flb_api_requests_total counter" in lines
    assert any(
        line.startswith('flb_api_requests_total{method="GET",route="/rounds/{n}",status="200"}')
        for line in lines
    )


def test_openapi_documents_every_route(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    expected = {
        "/contract",
        "/rounds",
        "/rounds/{n}",
        "/rounds/{n}/updates",
        "/rounds/{n}/report",
        "/rounds/{n}/rewards-tree",
        "/clients",
        "/clients/{addr}",
        "/clients/{addr}/proof",
        "/leaderboard",
        "/models",
        "/models/latest",
        "/models/{cid}",
        "/health",
        "/metrics",
        "/operator/oracle/status",
        "/operator/oracle/trigger",
        "/operator/oracle/pause",
        "/operator/oracle/resume",
    }
    assert set(spec["paths"]) == expected
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no docstring"
    assert client.get("/docs").status_code == 200


def test_cors_is_configurable(app: Any, federation_dir: Any) -> None:
    origin = "https://explorer.example"
    cors = create_app(
        api_settings(federation_dir, cors_origins=(origin,)), indexer=app.state.indexer, poll=False
    )
    with TestClient(cors) as browser:
        reply = browser.options("/rounds", headers={"Origin": origin, "Access-Control-Request-Method": "GET"})
        assert reply.headers["access-control-allow-origin"] == origin
        assert (
            "access-control-allow-origin"
            not in browser.get("/rounds", headers={"Origin": "https://evil.example"}).headers
        )


def test_dashboard_is_served_locally(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and 'id="accuracy-figure"' in page.text
    assert "http" not in "".join(
        line for line in page.text.splitlines() if "<script" in line or "stylesheet" in line
    )
    assert client.get("/static/dashboard.js").status_code == 200
    chartjs = client.get("/vendor/chart.umd.min.js")
    assert chartjs.status_code == 200 and "Chart" in chartjs.text[:5000]


def test_answers_are_cached_until_the_index_changes(app: Any, client: TestClient) -> None:
    cache = app.state.cache
    first = client.get("/rounds/2")
    hits = cache.hits
    again = client.get("/rounds/2")
    assert cache.hits == hits + 1 and again.content == first.content
    assert again.headers["content-type"] == "application/json"
    with app.state.db.transaction():  # any commit of the indexer makes every cached answer stale
        pass
    client.get("/rounds/2")
    assert cache.hits == hits + 1
    for uncached in ("/rounds/7", "/models/latest", "/health"):  # errors, downloads, live status
        client.get(uncached)
        client.get(uncached)
    assert cache.hits == hits + 1
    text = client.get("/metrics").text
    prefix = 'flb_api_requests_total{method="GET",route="/rounds/{n}",status="200"}'
    [line] = [x for x in text.splitlines() if x.startswith(prefix)]
    assert int(line.split()[-1]) >= 3  # hits are counted under their route too
