"""The client commands one by one, in this process, on anvil with Ape's test accounts.

The round is closed here by the round library the oracle uses (``finalize_with_library``), so
these tests do not depend on the oracle service; test_e2e.py runs the real one.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak

from tests.cli.conftest import Workspace, finalize_with_library, parse_json
from tests.cli.test_errors import address_of

pytestmark = [pytest.mark.anvil]


@pytest.mark.slow
def test_register_participate_status_claim_pull_chat_eval(workspace: Workspace, one_thread: None) -> None:
    ws = workspace
    dry = parse_json(ws.invoke("--json", "register", "--dry-run").stdout)
    assert dry == {
        "bytes": ws.data.stat().st_size,
        "commitment": dry["commitment"],
        "data": str(ws.data),
        "files": 1,
        "registered": False,
    }
    registered = parse_json(ws.invoke("--json", "register", "--account", "test:2").stdout)
    assert registered["commitment"] == dry["commitment"] and registered["registered"]

    before = parse_json(ws.invoke("status", "--json", "--account", "test:2").stdout)
    assert before["round"]["current"] == 1 and before["round"]["open"]
    assert before["account"]["registered"] and not before["account"]["submitted_this_round"]
    # The contract stores the manifest digest bound to the address that registered it.
    bound = keccak(
        abi_encode(["address", "bytes32"], [address_of("test:2"), bytes.fromhex(dry["commitment"][2:])])
    )
    assert before["account"]["dataset_commitment"] == "0x" + bound.hex()
    assert before["global_model"] == {
        "cid": ws.record.initial_model_cid,
        "round": 0,
        "metric": None,
        "epsilon": None,
        "report_cid": None,
        "metrics": {},
    }

    submitted = parse_json(ws.invoke("--json", "participate", "--account", "test:2", "--threads", "1").stdout)
    assert submitted["submitted"] and submitted["num_samples"] == 64
    assert Path(submitted["adapter"]).is_file()

    outcome = finalize_with_library(ws)
    status = parse_json(ws.invoke("--json", "status", "--account", "test:2").stdout)
    earned = outcome.rewards.cumulative[status["account"]["address"]]
    assert earned > 0
    assert status["rewards"] == {
        "earned": earned,
        "claimed": 0,
        "claimable": earned,
        "report_round": 1,
        "report_cid": outcome.report_cid,
    }
    assert status["report_error"] == ""
    assert status["global_model"]["cid"] == outcome.global_model_cid
    assert status["global_model"]["metrics"]["after"]["accuracy"] == pytest.approx(outcome.metric)
    human = ws.invoke("status", "--account", "test:2").stdout
    assert "claimable" in human and "(run `flb claim`)" in human

    claimed = parse_json(ws.invoke("--json", "claim", "--account", "test:2").stdout)
    assert claimed["paid"] == earned
    again = ws.invoke("claim", "--account", "test:2")
    assert "nothing to claim" in again.stdout
    assert parse_json(ws.invoke("--json", "balance", "--account", "test:2").stdout)["token"] == earned

    # pull: latest, by round, by CID; each a PEFT folder with provenance
    latest = parse_json(ws.invoke("--json", "pull", "--out", str(ws.root / "latest")).stdout)
    assert latest["cid"] == outcome.global_model_cid
    assert json.loads((ws.root / "latest" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    initial = parse_json(ws.invoke("--json", "pull", "--round", "0", "--out", str(ws.root / "r0")).stdout)
    assert initial["cid"] == ws.record.initial_model_cid
    not_yet = ws.invoke("pull", "--round", "2", expect=1)
    assert "round 2 is not finalized yet" in not_yet.stderr
    occupied = ws.invoke(
        "pull", "--cid", outcome.global_model_cid, "--out", str(ws.root / "latest"), expect=2
    )
    assert "pass --force" in occupied.stderr

    reply = ws.invoke("chat", "--prompt", "Where does a zorbaax live?", "--max-new-tokens", "4")
    assert reply.stdout.strip() != "" or reply.exit_code == 0
    piped = ws.invoke("chat", "--cid", outcome.global_model_cid, "--max-new-tokens", "2")
    assert piped.exit_code == 0

    record = ws.root / "record.csv"
    for _ in range(2):
        result = parse_json(
            ws.invoke(
                "--json",
                "eval",
                "--adapter",
                outcome.global_model_cid,
                "--subjects",
                "habitat",
                "--limit",
                "12",
                "--out",
                str(ws.root / "eval.json"),
                "--record",
                str(record),
            ).stdout
        )
    assert result["n"] == 12 and set(result["per_category"]) == {"habitat"}
    assert json.loads((ws.root / "eval.json").read_text())["accuracy"] == result["accuracy"]
    rows = list(csv.DictReader(record.open()))
    assert len(rows) == 2 and rows[0]["adapter"] == outcome.global_model_cid and rows[0]["n"] == "12"
    table = ws.invoke("eval", "--limit", "8", "--out", str(ws.root / "e2.json"), "--record", str(record))
    assert "overall" in table.stdout and "accuracy" in table.stdout


def test_config_show_names_each_source(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLB_ACCOUNT", "test:4")
    result = workspace.invoke("--network", "http://10.0.0.1:8545", "config", "show", "--json")
    shown = parse_json(result.stdout)
    assert shown["account"] == {"value": "test:4", "source": "env"}
    assert shown["network"] == {"value": "http://10.0.0.1:8545", "source": "command line"}
    assert shown["store"]["source"].startswith("file (")
    assert shown["password_env"] == {"value": "FLB_PASSWORD", "source": "default"}
    assert shown["task"]["value"]["model"] == "tiny"
    text = workspace.invoke("config", "show").stdout
    assert "task.model" in text and "= tiny" in text


def test_json_output_is_one_document_and_quiet_prints_only_results(workspace: Workspace) -> None:
    result = workspace.invoke("--json", "register", "--dry-run")
    assert parse_json(result.stdout)["registered"] is False
    assert result.stderr == ""  # --json: narration is suppressed, stdout holds the document only
    quiet = workspace.invoke("-q", "register", "--dry-run")
    assert quiet.stdout.strip().startswith("0x") and quiet.stderr == ""


def test_submit_through_the_oracles_grpc_upload(workspace: Workspace, one_thread: None) -> None:
    """A client without an IPFS node uploads to the oracle's gRPC service, signed by its account."""
    from flb_dapp.storage.grpc_upload import UploadServer
    from flb_dapp.storage.local import LocalStore
    from flb_dapp.wallet import account_address

    ws = workspace
    client = account_address("test:5")
    ws.invoke("register", "--account", "test:5")
    trained = parse_json(ws.invoke("--json", "train", "--account", "test:5", "--steps", "1").stdout)
    oracle_store = LocalStore(ws.root / "oracle-store")
    server = UploadServer(oracle_store, lambda address: address == client, ws.record.coordinator, 1 << 20)
    with server:
        result = ws.invoke("--json", "submit", "--account", "test:5", "--upload-grpc", server.target)
    done = parse_json(result.stdout)
    assert done["cid"] == trained["cid"] and done["stored_via"] == f"gRPC upload {server.target}"
    assert oracle_store.has(trained["cid"]) and not LocalStore(ws.store).has(trained["cid"])


def test_train_with_local_differential_privacy(workspace: Workspace, one_thread: None) -> None:
    from flb_dapp.lora import decode_adapter

    ws = workspace
    common = [
        "train",
        "--global-cid",
        ws.record.initial_model_cid,
        "--round",
        "1",
        "--account",
        "test:6",
        "--steps",
        "1",
        "--out",
        str(ws.root / "dp.safetensors"),
    ]
    missing = ws.invoke(*common, "--local-dp", "update", expect=2)
    assert "Error: --local-dp update needs --dp-epsilon and --dp-clip" in missing.stderr
    trained = parse_json(
        ws.invoke("--json", *common, "--local-dp", "update", "--dp-epsilon", "2", "--dp-clip", "1").stdout
    )
    assert trained["metrics"]["dp_epsilon"] == 2.0
    adapter = decode_adapter((ws.root / "dp.safetensors").read_bytes())
    assert adapter.extra["dp.mechanism"] and float(adapter.extra["dp.epsilon"]) == 2.0
    assert adapter.metadata.round == 1 and adapter.metadata.num_samples == 64
