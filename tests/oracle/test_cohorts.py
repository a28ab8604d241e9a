"""A federation that samples cohorts: only the drawn clients train, the round is due once they
submitted, the oracle records the cohort in the inputs and the report, a verifier re-derives it,
and an update from outside the cohort is rejected should one ever reach the round."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flb_dapp.audit import load_report, read_round_inputs, verify_round
from flb_dapp.chain.cohort import member_indices
from flb_dapp.evaluation.task import make_task
from flb_dapp.federation import FederationPlan, build_federation
from flb_dapp.rounds import RoundComputation
from flb_dapp.rounds.inputs import RoundInputs
from flb_dapp.taskspec import TaskSpec, make_evaluator
from oracle.pipeline import Oracle

pytestmark = pytest.mark.slow
CLIENTS, SIZE = 6, 2


def test_a_sampled_round_from_draw_to_verification(tmp_path: Path, accounts: Any, chain: Any) -> None:
    spec = TaskSpec(model="tiny", steps=5, eval_limit=40)
    plan = FederationPlan(
        spec=spec,
        account="test:1",
        cohort_size=SIZE,
        oracle={"strategy": {"name": "fedavg"}, "torch_threads": 1},
    )
    shares = make_task(seed=spec.task_seed).split_non_iid(CLIENTS, seed=0)
    clients = [accounts[2 + i] for i in range(CLIENTS)]
    federation = build_federation(tmp_path, accounts[0], accounts[1], clients, shares, plan)
    federation.scorer = make_evaluator(spec, tmp_path / "cache")
    sdk, oracle = federation.coordinator, Oracle.for_federation(federation)
    # Round 1 opened at deployment, before anyone registered; the operator drew its cohort once
    # the clients had registered. Nobody trains in it here: it runs out empty.
    first_seed = int(sdk.round(1).cohort_seed, 16)
    assert federation.cohort(1) == member_indices(first_seed, SIZE, CLIENTS) and sdk.round(1).sampled
    chain.mine(deltatime=sdk.round(1).reveal_deadline - chain.pending_timestamp + 1)
    [first] = oracle.run_once()
    assert first.round == 1 and sdk.round(2).sampled

    cohort = federation.cohort(2)
    info = sdk.round(2)
    seed = int(info.cohort_seed, 16)
    assert cohort == member_indices(seed, SIZE, CLIENTS) and len(cohort) == SIZE
    assert cohort == [i for i, c in enumerate(clients) if sdk.is_cohort_member(2, c.address)]
    assert oracle.due_round() is None
    federation.submit(cohort[0], federation.train(cohort[0]))
    assert sdk.round_phase(2) == "commit" and oracle.due_round() is None
    federation.submit(cohort[1], federation.train(cohort[1]))  # the cohort committed: reveals follow
    assert sdk.round_phase(2) == "due" and oracle.due_round() == 2

    [second] = oracle.run_once()
    report = load_report(federation.store, sdk.round(2).report_cid)
    members = [clients[i].address for i in cohort]
    assert report.cohort is not None
    assert (report.cohort.seed, report.cohort.size, report.cohort.population) == (
        info.cohort_seed,
        SIZE,
        CLIENTS,
    )
    assert report.cohort.members == members
    assert [(d.client, d.accepted) for d in report.inputs] == [(m, True) for m in members]
    first_report = load_report(federation.store, sdk.round(1).report_cid)
    assert first_report.cohort is not None and first_report.cohort.seed == sdk.round(1).cohort_seed
    assert first_report.inputs == []
    assert verify_round(sdk, federation.store, 2, federation.scorer, start_block=federation.record.block).ok

    # Defence in depth: a cohort that left one submitter out rejects that update with the reason.
    inputs = read_round_inputs(sdk, federation.store, 2, spec, start_block=federation.record.block)
    assert inputs.cohort is not None and RoundInputs.from_json(inputs.to_json()) == inputs
    narrowed = replace(inputs, cohort=replace(inputs.cohort, members=(members[0],)))
    run = RoundComputation(narrowed, oracle.round_settings, federation.store, federation.scorer)
    decisions = {d.client: d for d in run.result("validate").decisions}
    assert decisions[members[0]].accepted and not decisions[members[1]].accepted
    assert decisions[members[1]].reason == (
        f"{members[1]} is not in the cohort of round 2 "
        f"({SIZE} of {CLIENTS} clients drawn by seed {info.cohort_seed})"
    )
    assert second.round == 2
