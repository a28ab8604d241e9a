"""The real federated task through the real loop: SmolLM2, two clients holding different real
benchmarks, one round on the embedded chain, the oracle scoring held-out ARC in the cloze format.

Small on purpose (2 steps, 8 questions a client, 6 scored): it checks the wiring, exactly; the
accuracy it reaches is measured by bench/real_federation.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flb_dapp.chain.coordinator import Coordinator
from flb_dapp.cli.main import cli
from flb_dapp.cli.simulation import SimulationConfig, run_simulation
from flb_dapp.evaluation.benchmarks import mmlu_group
from flb_dapp.evaluation.real_task import EVAL_DATA, real_task_shares, real_task_spec
from flb_dapp.report import parse_report
from flb_dapp.taskspec import evaluation_split


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "real"], "needs a real model"),
        (["--task", "real", "--model", "smollm2", "--clients", "5"], "at most 4 clients"),
        (["--eval-limit", "8"], "--task real only"),
        (["--clients", "4", "--cohort", "5"], "--cohort must be between 0 and --clients (4)"),
    ],
)
def test_the_real_task_refuses_what_it_cannot_run(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "run"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "run").exists()  # refused before anything was deployed


def test_each_client_holds_one_source_and_nobody_holds_arc() -> None:
    shares = real_task_shares(4, 32, seed=0)
    assert [{q.category for q in share} for share in shares][:3] == [
        {"sciq"},
        {"openbookqa"},
        {"commonsenseqa"},
    ]
    assert all(len(share) == 32 for share in shares)
    assert {mmlu_group(q.category) for q in shares[3]} == {"STEM"}
    assert not any(str(q.question_id).startswith("arc") for share in shares for q in share)
    assert real_task_shares(2, 32, seed=0) == shares[:2]  # a client's share does not depend on N
    spec = real_task_spec(seed=0)
    questions, _ = evaluation_split(spec)
    assert len(questions) == spec.eval_limit and {q.category for q in questions} == {
        "arc-easy",
        "arc-challenge",
    }
    assert (spec.model, spec.eval_format, spec.eval_chat) == ("smollm2", "cloze", False)


@pytest.mark.slow
def test_one_real_round_with_two_clients(tmp_path: Path, accounts: Any) -> None:
    config = SimulationConfig(
        clients=2, rounds=1, model="smollm2", task="real", steps=2, per_client=8, eval_limit=6,
        out=tmp_path / "run", cache_dir=tmp_path / "models",
    )  # fmt: skip
    summary = run_simulation(config)

    clients = list(summary["claimed"])
    assert len(clients) == 2
    assert summary["settings"]["sources"] == ["sciq", "openbookqa"]
    report = parse_report((tmp_path / "run" / "reports" / "round-1.json").read_bytes())
    assert sorted(report.accepted) == sorted(clients) and report.rejected == {}
    assert [d.num_samples for d in report.inputs] == [8, 8]
    task = report.task
    assert (task["model"], task["data"], task["eval_format"], task["eval_chat"]) == (
        "smollm2",
        EVAL_DATA,
        "cloze",
        False,
    )
    assert report.metrics.after.n == 6 and report.metrics.after.accuracy_norm is not None

    sdk = Coordinator(summary["contract"])
    info = sdk.round(1)
    assert info.finalized and sdk.current_round == 2
    assert (info.global_model_cid, info.report_cid) == (
        report.global_model_cid,
        summary["rounds"][0]["report_cid"],
    )
    assert info.rewards_root == report.rewards.root
    for client in clients:
        earned = report.rewards.cumulative_of(client)
        assert summary["claimed"][client] == earned == sdk.client(client).claimed == sdk.token_balance(client)
    assert sum(summary["claimed"].values()) == sum(report.rewards.round.values()) > 0
    # Client i trained on source i's questions (the shares are the real task's, by origin).
    sciq, openbookqa = real_task_shares(2, 8, seed=0)
    assert {q.category for q in sciq} == {"sciq"} and {q.category for q in openbookqa} == {"openbookqa"}
