"""The score step: each client's contribution, then its share of the round's budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flb_dapp.exceptions import AggregationError
from flb_dapp.rewards import allocate, prototype_scores
from flb_dapp.rounds.combining import combine, included
from flb_dapp.rounds.results import Decision, ScoreResult

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation


def _leave_one_out(run: RoundComputation, chosen: list[Decision], contributions: dict[str, float]) -> str:
    """Contribution = how much worse the model is without the client (loss). Returns a note when
    the rule cannot re-aggregate without a client."""
    loss = run.result("evaluate").after.loss
    loss_all = float("nan") if loss is None else float(loss)
    weights = run.result("aggregate").weights
    try:
        for decision in chosen:
            others = [d for d in chosen if d is not decision]
            without, _, _ = combine(run, others)
            loss_without = float(run.scorer.evaluate(without).loss)
            # Positive when the model is better with this client than without it.
            contributions[decision.client] = max(0.0, loss_without - loss_all)
    except AggregationError as exc:
        # A robust rule may not run on n - 1 updates (Multi-Krum needs n > 2f + 2): the rule's
        # own weights are then the contributions, and the report says why.
        contributions.update({d.client: float(weights[d.client]) for d in chosen})
        return f"leave-one-out impossible ({exc}); contributions are the aggregation weights"
    return ""


def _prototype(run: RoundComputation, chosen: list[Decision], contributions: dict[str, float]) -> None:
    evaluation = run.result("evaluate")
    before, after = evaluation.before.accuracy, evaluation.after.accuracy
    improvement = (after - before) / before if before > 0 else after
    weight_bytes = sum(v.nbytes for v in run.base.tensors.values())
    contributions.update(
        prototype_scores(
            {d.client: 1 for d in chosen},
            weight_bytes,
            {d.client: d.num_samples for d in chosen},
            improvement,
        )
    )


def score_step(run: RoundComputation) -> ScoreResult:
    chosen = included(run.result("validate").accepted, run.result("aggregate").weights)
    contributions = {d.client: 0.0 for d in run.result("validate").decisions}
    note = ""
    if run.settings.scoring == "leave-one-out":
        note = _leave_one_out(run, chosen, contributions)
    else:
        _prototype(run, chosen, contributions)
    rewards = allocate(contributions, run.inputs.budget, run.inputs.previous_cumulative)
    run.remember_rewards(rewards)
    return ScoreResult(
        contributions=contributions,
        round_rewards=rewards.round_rewards,
        cumulative=rewards.cumulative,
        rewards_root=rewards.tree.root_hex,
        note=note,
    )
