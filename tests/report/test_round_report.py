"""The round report's JSON: canonical, exact for JavaScript readers, and schema 1 still read."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_utils import to_checksum_address

from flb_dapp.report import (
    REPORT_FORMAT,
    AggregationSummary,
    EvaluationSummary,
    ReportError,
    ReportInput,
    ReportMetrics,
    ReportPrivacy,
    ReportRewards,
    RoundReport,
    canonical_json,
    parse_report,
)
from flb_dapp.rewards import allocate

SCRIPT = Path(__file__).resolve().parent / "report_amounts.mjs"
BUDGET = 1_000 * 10**18 + 7  # far above 2**53, and odd so that rounding would show


def address(i: int) -> str:
    return str(to_checksum_address(keccak(f"client {i}".encode())[-20:]))


def make_report(clients: int = 3) -> RoundReport:
    scores = {address(i): float(i + 1) for i in range(clients)}
    rewards = allocate(scores, BUDGET, {address(0): 3 * 10**21 + 1})
    summary = EvaluationSummary(accuracy=0.5, loss=1.25, n=40)
    return RoundReport(
        software={"flb": "test"},
        contract="0x" + "00" * 20,
        chain_id=1337,
        round=2,
        task={"model": "tiny"},
        previous_global_model_cid="bafkprevious",
        global_model_cid="bafkglobal",
        settings={},
        strategy={"name": "fedavg"},
        inputs=[
            ReportInput(
                client=c,
                cid=f"bafk{i}",
                num_samples=8,
                accepted=True,
                reason="",
                reward=rewards.round_rewards[c],
            )
            for i, c in enumerate(scores)
        ],
        aggregation=AggregationSummary(),
        privacy=ReportPrivacy(
            server_noise=False, round_event=None, local_dp=None, epsilon=float("inf"), delta=1e-5, state={}
        ),
        metrics=ReportMetrics(before=summary, after=summary),
        rewards=ReportRewards(
            budget=BUDGET,
            scoring="leave-one-out",
            round=rewards.round_rewards,
            round_total=rewards.total,
            cumulative=rewards.cumulative,
            root=rewards.tree.root_hex,
            proofs={c: rewards.tree.proof_hex(c) for c in rewards.tree.amounts},
        ),
    )


def read_in_javascript(*documents: bytes) -> list[dict[str, Any]]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the JSON.parse check needs it (Node 20, see README)")
    text = b"\n".join(documents).decode()
    result = subprocess.run([node, str(SCRIPT)], input=text, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def expected_amounts(report: RoundReport) -> dict[str, Any]:
    rewards = report.rewards
    return {
        "rewards": [str(d.reward) for d in report.inputs],
        "budget": str(rewards.budget),
        "round_total": str(rewards.round_total),
        "round": {c: str(a) for c, a in rewards.round.items()},
        "cumulative": {c: str(a) for c, a in rewards.cumulative.items()},
    }


def test_javascript_json_parse_reads_every_amount_exactly() -> None:
    report = make_report()
    assert max(report.rewards.cumulative.values()) > 2**53
    [seen] = read_in_javascript(report.to_json())
    assert seen == expected_amounts(report)
    # The check can fail: schema 1 wrote amounts as JSON numbers, and JSON.parse rounds them.
    legacy = report.to_dict()
    legacy["rewards"]["budget"] = report.rewards.budget
    [rounded] = read_in_javascript(canonical_json(legacy))
    assert rounded["budget"] == "1e+21" != str(BUDGET)


def test_canonical_json_round_trips_to_the_same_bytes() -> None:
    report = make_report()
    raw = report.to_json()
    document = json.loads(raw)
    assert document["format"] == REPORT_FORMAT == "flb-round-report/2"
    assert document["rewards"]["budget"] == "1000000000000000000007"
    assert document["privacy"]["epsilon"] == "inf"
    assert report.cohort is None and "cohort" not in document  # unsampled rounds: no key
    assert raw == json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    again = parse_report(raw)
    assert again == report and again.to_json() == raw
    assert again.rewards.cumulative_of(address(0).lower()) == report.rewards.cumulative[address(0)]


def test_schema_1_reports_are_still_read() -> None:
    report = make_report()
    legacy = report.to_dict()
    legacy["format"] = "flb-round-report/1"
    for entry in legacy["inputs"]:
        entry["reward"] = int(entry["reward"])
    rewards = legacy["rewards"]
    for key in ("budget", "round_total"):
        rewards[key] = int(rewards[key])
    for key in ("round", "cumulative"):
        rewards[key] = {c: int(a) for c, a in rewards[key].items()}
    parsed = parse_report(canonical_json(legacy))
    assert parsed.rewards == report.rewards and parsed.inputs == report.inputs
    assert json.loads(parsed.to_json())["format"] == REPORT_FORMAT


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["rewards"].update(budget="12.5"), "rewards.budget: Value error, an amount string holds"),
        (
            lambda d: d["rewards"].update(budget=-1),
            "rewards.budget: Value error, amount out of uint256 range",
        ),
        (lambda d: d["rewards"]["cumulative"].update(x="1"), "'x' is not an address"),
        (
            lambda d: d["inputs"][0].update(reward=True),
            "inputs.0.reward: Value error, an amount is an integer",
        ),
        (lambda d: d["rewards"].update(extra=1), "rewards.extra: Extra inputs are not permitted"),
        (lambda d: d.update(format="flb-round-report/9"), "not an FLB round report"),
    ],
)
def test_malformed_reports_are_refused_with_the_field_named(edit: Any, message: str) -> None:
    document = make_report().to_dict()
    edit(document)
    with pytest.raises(ReportError) as caught:
        parse_report(canonical_json(document))
    assert message in str(caught.value)
