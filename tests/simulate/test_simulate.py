"""`flb simulate` as users run it: a subprocess, checked from its run folder and the chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.merkle import RewardsTree
from flb_dapp.report import parse_report
from flb_dapp.storage.cid import cid_of_bytes
from tests.fixtures.processes import AnvilNode, start_anvil

pytestmark = [pytest.mark.slow, pytest.mark.anvil]
FLB = str(Path(sys.executable).with_name("flb"))


@pytest.fixture
def node() -> Any:
    anvil = start_anvil()
    yield anvil
    anvil.stop()


def simulate(out: Path, node: AnvilNode, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [FLB, "simulate", "--out", str(out), "--network", node.uri, *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"summary: {out / 'summary.json'}" in result.stdout
    return json.loads((out / "summary.json").read_text())


def test_three_clients_three_rounds(tmp_path: Path, node: AnvilNode) -> None:
    from ape import networks

    summary = simulate(tmp_path, node, "--clients", "3", "--rounds", "3")
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    assert rounds[-1]["accuracy"] >= summary["initial_accuracy"] + 0.3
    assert all(r["accepted"] == 3 and r["rejected"] == 0 for r in rounds)
    with Image.open(tmp_path / "plot.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 400
    # Each report with its rewards tree beside it, in StandardMerkleTree's dump format.
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == [
        name for i in (1, 2, 3) for name in (f"round-{i}.json", f"round-{i}.rewards-tree.json")
    ]

    with networks.parse_network_choice(node.uri):
        sdk = Coordinator(summary["contract"])
        assert sdk.current_round == 4
        for row in rounds:
            info = sdk.round(row["round"])
            assert info.finalized
            assert (info.global_model_cid, info.report_cid) == (row["global_model_cid"], row["report_cid"])
            # The dump beside the report is the on-chain tree, and the report names its CID.
            dump = (tmp_path / "reports" / f"round-{row['round']}.rewards-tree.json").read_bytes()
            report = parse_report((tmp_path / "reports" / f"round-{row['round']}.json").read_bytes())
            assert RewardsTree.from_standard_dump(json.loads(dump)).root_hex == info.rewards_root
            assert report.rewards.tree_cid == cid_of_bytes(dump)
        allocated = {c: sum(r["rewards"].get(c, 0) for r in rounds) for c in summary["claimed"]}
        for client, amount in summary["claimed"].items():
            assert amount == allocated[client] == sdk.client(client).claimed == sdk.token_balance(client)
        _, total_allocated, claimed = sdk.reward_totals
        assert total_allocated == claimed == sum(allocated.values()) > 0


def test_a_malicious_client_earns_nothing_under_trimmed_mean(tmp_path: Path, node: AnvilNode) -> None:
    summary = simulate(
        tmp_path,
        node,
        "--clients",
        "5",
        "--rounds",
        "2",
        "--malicious",
        "1",
        "--strategy",
        "trimmed-mean",
        "--steps",
        "30",
    )
    [bad] = summary["malicious"]
    accuracies = [summary["initial_accuracy"]] + [r["accuracy"] for r in summary["rounds"]]
    assert accuracies[1] > accuracies[0] and accuracies[2] > accuracies[1], accuracies
    for row in summary["rounds"]:
        assert row["rewards"].get(bad, 0) == 0
        assert bad in row["down_weighted"] or row["rejected"] >= 1
    assert summary["claimed"][bad] == 0
    assert sum(summary["claimed"].values()) > 0
