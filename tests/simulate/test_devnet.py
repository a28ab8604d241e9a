"""`flb devnet up`, two clients as separate processes, the oracle finalizes, the REST API shows the
round, and `flb devnet down` leaves none of its processes running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flb_dapp.devnet import Devnet, _alive

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
FLB = str(Path(sys.executable).with_name("flb"))


def test_devnet_two_clients_one_round(tmp_path: Path) -> None:
    folder = tmp_path / "devnet"
    up = subprocess.run(
        [FLB, "devnet", "up", "--dir", str(folder), "--steps", "20", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    pids: dict[str, int] = {}
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        info = json.loads(up.stdout[up.stdout.index("{") :])
        state = Devnet(folder).status()
        pids = {name: item["pid"] for name, item in state.items()}
        assert {"anvil", "oracle", "api"} <= set(pids) and all(item["running"] for item in state.values())
        config = info["config"]
        assert [c["account"] for c in info["clients"]] == ["test:2", "test:3"]
        # The printed command lines, verbatim: every client registers, then both train at once.
        for client in info["clients"]:
            registered = subprocess.run(
                ["bash", "-c", client["register"]], capture_output=True, text=True, timeout=300
            )
            assert registered.returncode == 0, registered.stdout + registered.stderr
        clients = [
            subprocess.Popen(
                ["bash", "-c", client["participate"]],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            for client in info["clients"]
        ]
        outputs = []
        for client in clients:
            output, _ = client.communicate(timeout=600)
            assert client.returncode == 0, output[-3000:]
            outputs.append(output)
        # The later commit closed the commit phase and revealed at once; the earlier client
        # reveals on its next run, as a cron job would (or at once too, when the other's commit
        # landed before it looked at the phase: both train at the same time).
        assert sorted("submitted bafk" in o for o in outputs) in ([False, True], [True, True]), outputs
        for i, output in enumerate(outputs):
            if "submitted bafk" not in output:
                assert "committed to bafk" in output and "run again once the commit phase closed" in output
                again = subprocess.run(
                    [
                        FLB,
                        "--config",
                        config,
                        "participate",
                        "--account",
                        f"test:{2 + i}",
                        "--data",
                        str(folder / "data" / f"client-{i}.jsonl"),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                assert again.returncode == 0 and again.stdout.startswith("revealed bafk"), (
                    again.stdout + again.stderr
                )

        api = info["urls"]["api"]
        round_one = _wait_for_indexed_round(api, 1)
        assert round_one["submissions"] == 2 and round_one["accepted"] == 2
        assert str(round_one["global_model_cid"]).startswith("bafk")
        updates = httpx.get(f"{api}/rounds/1/updates", timeout=10).json()
        assert sorted(u["client"] for u in updates["data"]) == sorted([ALICE, BOB])
    finally:
        down = subprocess.run(
            [FLB, "devnet", "down", "--dir", str(folder)], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0, down.stderr
    assert "stopped: api, oracle" in down.stdout
    assert not any(_alive(pid) for pid in pids.values()), pids
    assert Devnet(folder).status() == {}


ALICE, BOB = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
CONFIG = ".flb/devnet/flb.yaml"  # relative, exactly as the README types it


def _flb(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [FLB, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, f"flb {' '.join(args)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _wait_for_indexed_round(api: str, number: int, timeout: float = 300) -> dict[str, Any]:
    """Round ``number`` as the API serves it once finalized and its report indexed. The indexer
    records the finalization event before it has fetched the report from the store (``accepted``
    stays null and ``report_status`` "pending" until then), so waiting for "finalized" alone races
    the report fetch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{api}/rounds/{number}", timeout=10)
        body: dict[str, Any] = response.json() if response.status_code == 200 else {}
        if body.get("status") == "finalized" and body.get("report_status") == "indexed":
            return body
        time.sleep(1)
    raise AssertionError(f"the oracle did not finalize round {number} and the API index its report in time")


def _client(cwd: Path, command: str, account: str, data: str) -> str:
    """One of the README's client lines, relative paths and all; stdout."""
    return _flb(cwd, "--config", CONFIG, command, "--account", account, "--data", data).stdout


def test_readme_walkthrough_with_the_default_folder(tmp_path: Path) -> None:
    """The README's walkthrough as typed: default `--dir`, relative `--config`/`--data` paths, run
    from a directory that is not the repository (so nothing may lean on the repository as cwd)."""
    from flb_dapp.storage.kubo import KuboStore

    work, elsewhere = tmp_path.resolve() / "work", tmp_path.resolve() / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    folder = work / ".flb" / "devnet"
    pids: dict[str, int] = {}
    try:
        up = _flb(work, "devnet", "up")
        pids = {name: item["pid"] for name, item in Devnet(folder).status().items()}
        assert set(pids) == {"anvil", "ipfs", "oracle", "api"}, up.stdout
        assert all(item["running"] for item in Devnet(folder).status().values())
        # Ape's per-transaction log stays out of the summary without -v.
        assert "FLB devnet is up" in up.stdout
        assert not any(w in up.stdout + up.stderr for w in ("INFO:", "Confirmed", "SUCCESS:")), up.stdout
        # The printed client lines hold absolute paths: they work pasted into any terminal.
        line = f"--config {folder}/flb.yaml register --account test:2 --data {folder}/data/client-0.jsonl"
        assert line in up.stdout, up.stdout
        # Every path in the written config is absolute: the services read it from the devnet folder.
        config = yaml.safe_load((folder / "flb.yaml").read_text())
        for path in (config["deployment"], config["cache_dir"], config["oracle"]["journal"]):
            assert Path(path).is_absolute() and Path(path).is_relative_to(folder), path
        assert Path(config["api"]["database"]) == folder / "api.sqlite"
        assert config["store"] == json.loads((folder / "devnet.json").read_text())["urls"]["ipfs"]

        # The README's order: both register, then each participates, then the first again.
        data = [".flb/devnet/data/client-0.jsonl", ".flb/devnet/data/client-1.jsonl"]
        assert f"registered {ALICE}" in _client(work, "register", "test:2", data[0])
        assert f"registered {BOB}" in _client(work, "register", "test:3", data[1])
        first = _client(work, "participate", "test:2", data[0])
        assert "committed to bafk" in first and "run again once the commit phase closed" in first, first
        # The second commit closes the commit phase, so this run reveals at once.
        assert "submitted bafk" in _client(work, "participate", "test:3", data[1])
        assert _client(work, "participate", "test:2", data[0]).startswith("revealed bafk")

        api = json.loads((folder / "devnet.json").read_text())["urls"]["api"]
        round_one = _wait_for_indexed_round(api, 1)
        assert round_one["submissions"] == 2 and round_one["accepted"] == 2

        status = json.loads(_flb(work, "--config", CONFIG, "--json", "status", "--account", "test:2").stdout)
        assert status["round"]["current"] == 2
        report_cid = status["global_model"]["report_cid"]
        with KuboStore(config["store"]) as store:
            report = json.loads(store.get_bytes(report_cid))
        earned = int(report["rewards"]["cumulative"][ALICE])
        assert earned > 0
        assert status["rewards"] == {
            "earned": earned,
            "claimed": 0,
            "claimable": earned,
            "report_round": 1,
            "report_cid": report_cid,
        }
        balance_before = status["account"]["token_balance"]

        claim = json.loads(_flb(work, "--config", CONFIG, "--json", "claim", "--account", "test:2").stdout)
        assert claim["paid"] == earned and claim["claimed_before"] == 0
        # The config names the same files from any directory: read the result from elsewhere.
        absolute = str(folder / "flb.yaml")
        after = json.loads(
            _flb(elsewhere, "--config", absolute, "--json", "status", "--account", "test:2").stdout
        )
        assert after["account"]["token_balance"] - balance_before == earned
        assert after["rewards"]["claimed"] == earned and after["rewards"]["claimable"] == 0

        _flb(work, "--config", CONFIG, "pull", "--merge", "./merged")
        merged = work / "merged"
        assert {"config.json", "model.safetensors", "flb-global.json"} <= {p.name for p in merged.iterdir()}
        provenance = json.loads((merged / "flb-global.json").read_text())
        assert provenance["cid"] == status["global_model"]["cid"] == round_one["global_model_cid"]
        assert provenance["round"] == 1
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(merged)
        assert sum(p.numel() for p in model.parameters()) > 0
    finally:
        down = subprocess.run([FLB, "devnet", "down"], cwd=work, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped: api, oracle, ipfs, anvil"
    assert pids and not any(_alive(pid) for pid in pids.values()), pids
    assert Devnet(folder).status() == {}
