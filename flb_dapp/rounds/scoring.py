"""The score step: each client's contribution, then its share of the round's budget.

Rules (``settings.scoring``): ``shapley`` (the default, chosen by ``bench/contributions.py``),
``leave-one-out`` and ``prototype``; see ``contributions.py``. Every rule pays nothing to rejected
updates, to zero deltas (free riders) and to copies of an earlier update (copiers).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from flb_dapp.rewards import allocate, prototype_scores
from flb_dapp.rounds.coalitions import non_players
from flb_dapp.rounds.combining import LazyDelta, included
from flb_dapp.rounds.contributions import Scored, score_contributions
from flb_dapp.rounds.results import Decision, ScoreResult

if TYPE_CHECKING:
    from flb_dapp.rounds.computation import RoundComputation


def _prototype(run: RoundComputation, chosen: Sequence[Decision]) -> Scored:
    """The earlier prototype's formula, with the free-rider and copier rule applied."""
    base = run.base
    deltas = {d.client: LazyDelta(partial(run.load_update, d.cid), base) for d in chosen}
    zeroed = non_players(chosen, deltas)
    evaluation = run.result("evaluate")
    before, after = evaluation.before.accuracy, evaluation.after.accuracy
    improvement = (after - before) / before if before > 0 else after
    weight_bytes = sum(v.nbytes for v in base.tensors.values())
    paid = [d for d in chosen if d.client not in zeroed]
    scores = prototype_scores(
        {d.client: 1 for d in paid}, weight_bytes, {d.client: d.num_samples for d in paid}, improvement
    )
    return Scored(
        contributions={d.client: scores.get(d.client, 0.0) for d in chosen}, rule="prototype", zeroed=zeroed
    )


def score_step(run: RoundComputation) -> ScoreResult:
    decisions = run.result("validate").decisions
    chosen = included(run.result("validate").accepted, run.result("aggregate").weights)
    if run.settings.scoring == "prototype":
        scored = _prototype(run, chosen)
    else:
        scored = score_contributions(run, chosen)
    contributions = {d.client: 0.0 for d in decisions}
    contributions.update(scored.contributions)
    rewards = allocate(contributions, run.inputs.budget, run.inputs.previous_cumulative)
    run.remember_rewards(rewards)
    return ScoreResult(
        contributions=contributions,
        round_rewards=rewards.round_rewards,
        cumulative=rewards.cumulative,
        rewards_root=rewards.tree.root_hex,
        note="; ".join(scored.notes),
        rule=scored.rule,
        evaluations=scored.evaluations,
        seed=scored.seed,
        zeroed=scored.zeroed,
    )
