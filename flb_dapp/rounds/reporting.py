"""The report step: the typed round report from the steps' results, and the rewards tree's dump."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils import to_checksum_address

from flb_dapp import __version__
from flb_dapp.report import (
    AggregationSummary,
    ReportCohort,
    ReportInput,
    ReportMetrics,
    ReportPrivacy,
    ReportRewards,
    RoundReport,
    canonical_json,
)
from flb_dapp.rounds.combining import strategy_for
from flb_dapp.rounds.results import ReportResult
from flb_dapp.storage.cid import cid_of_bytes

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation


def rewards_tree_dump(run: RoundComputation) -> bytes | None:
    """The rewards tree in OpenZeppelin's ``standard-v1`` dump format (None: nobody earned anything)."""
    tree = run.rewards().tree
    return canonical_json(tree.standard_dump()) if tree.amounts else None


def build_report(run: RoundComputation) -> RoundReport:
    dump = rewards_tree_dump(run)
    aggregated = run.result("aggregate")
    scored = run.result("score")
    evaluation = run.result("evaluate")
    rewards = run.rewards()
    inputs = [
        ReportInput(
            **d.model_dump(),
            weight=aggregated.weights.get(d.client, 0.0),
            excluded=aggregated.excluded.get(d.client, ""),
            contribution=scored.contributions.get(d.client, 0.0),
            reward=rewards.round_rewards.get(to_checksum_address(d.client), 0),
        )
        for d in run.result("validate").decisions
    ]
    event = aggregated.privacy_event
    return RoundReport(
        software={"flb": __version__},
        contract=run.inputs.contract,
        chain_id=run.inputs.chain_id,
        round=run.inputs.round,
        task=dict(run.inputs.task),
        previous_global_model_cid=run.inputs.previous_global_cid,
        inputs_block=run.inputs.block,
        banned=sorted(run.inputs.banned),
        cohort=ReportCohort(**run.inputs.cohort.to_json()) if run.inputs.cohort else None,
        global_model_cid=aggregated.global_model_cid,
        settings=run.settings.describe(),
        strategy=strategy_for(run).describe(),
        strategy_state=aggregated.strategy_state,
        inputs=inputs,
        aggregation=AggregationSummary(metrics=dict(aggregated.metrics)),
        privacy=ReportPrivacy(
            server_noise=event is not None and event["noise_multiplier"] > 0,
            round_event=event,
            local_dp=aggregated.local_dp.model_dump() if aggregated.local_dp else None,
            epsilon=aggregated.epsilon,
            delta=aggregated.privacy_state["delta"],
            state=aggregated.privacy_state,
            noise_binding=run.inputs.noise.to_json() if run.inputs.noise else None,
        ),
        metrics=ReportMetrics(before=evaluation.before, after=evaluation.after),
        rewards=ReportRewards(
            budget=run.inputs.budget,
            scoring=run.settings.scoring,
            note=scored.note,
            rule=scored.rule,
            evaluations=scored.evaluations,
            seed=scored.seed,
            zeroed=dict(scored.zeroed),
            round=rewards.round_rewards,
            round_total=rewards.total,
            cumulative=rewards.cumulative,
            root=rewards.tree.root_hex,
            proofs={c: rewards.tree.proof_hex(c) for c in rewards.tree.amounts},
            tree_cid=cid_of_bytes(dump) if dump is not None else None,
        ),
    )


def report_step(run: RoundComputation) -> ReportResult:
    """Store the rewards tree's dump (so ``StandardMerkleTree.load`` opens it), then the report
    naming it; the report's CID is what goes on chain."""
    dump = rewards_tree_dump(run)
    if dump is not None:
        run.store.put_bytes(dump)
    return ReportResult(report_cid=run.store.put_bytes(run.report().to_json()))
