"""The contract suite and `ape run deploy` against a real anvil node on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.processes import ROOT, AnvilNode, start_anvil

pytestmark = [pytest.mark.anvil, pytest.mark.slow]


@pytest.fixture
def fresh_anvil() -> AnvilNode:
    node = start_anvil()
    yield node  # type: ignore[misc]
    node.stop()


def test_contract_suite_passes_on_anvil(fresh_anvil: AnvilNode) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/contracts/test_coordinator.py",
            "tests/contracts/test_admission.py",
            "tests/contracts/test_settlement.py",
            "tests/contracts/test_settlement_challenges.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "--network",
            fresh_anvil.uri,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:]
    assert summary.startswith("59 passed"), summary


def test_ape_run_deploy_on_anvil_and_rerun_says_it_exists(fresh_anvil: AnvilNode, tmp_path: Path) -> None:
    ape = str(Path(sys.executable).with_name("ape"))
    model = tmp_path / "initial.safetensors"
    model.write_bytes(b"stand-in initial adapter bytes")
    common = [
        "--network",
        fresh_anvil.uri,
        "--records",
        str(tmp_path / "deployments"),
        "--round-duration",
        "600",
    ]
    first = subprocess.run(
        [
            ape,
            "run",
            "deploy",
            *common,
            "--initial-model",
            str(model),
            "--store",
            str(tmp_path / "store"),
            "--oracle",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    record = json.loads((tmp_path / "deployments" / "31337.json").read_text())
    assert record["chain_id"] == 31337
    assert record["network"] == fresh_anvil.uri
    assert record["oracle"] == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    assert record["round_duration"] == 600
    assert record["initial_model_cid"] == "bafkreifayhvop2bccuibi4rfjrz6pmz6qf35cf6yctc3o6l6ja2gayg5ai"
    assert (tmp_path / "store").is_dir()

    second = subprocess.run(
        [ape, "run", "deploy", *common, "--initial-model-cid", record["initial_model_cid"]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"FLB is already deployed on chain 31337: coordinator {record['coordinator']}" in second.stdout
    assert json.loads((tmp_path / "deployments" / "31337.json").read_text()) == record

    settled = subprocess.run(
        [ape, "run", "deploy", *common, "--initial-model-cid", record["initial_model_cid"], "--force",
         "--settlement", "--quorum", "3", "--finalizer-bond", "500",
         "--admission", "allowlist", "--registration-bond", "2.5", "--client-exit-delay", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert settled.returncode == 0, settled.stdout + settled.stderr
    with_settlement = json.loads((tmp_path / "deployments" / "31337.json").read_text())
    assert with_settlement["settlement"].startswith("0x")
    assert with_settlement["coordinator"] != record["coordinator"]
    line = f"settlement  {with_settlement['settlement']} (the oracle must bond 500 tokens to propose)"
    assert line in settled.stdout
    assert "admission   allowlist, bond 2.5 tokens" in settled.stdout
    assert (with_settlement["admission"], with_settlement["client_exit_delay"]) == ("allowlist", 120)
    assert with_settlement["registration_bond"] == 25 * 10**17
    assert record["admission"] == "open" and record["registration_bond"] == 0
