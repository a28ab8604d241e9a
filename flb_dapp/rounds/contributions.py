"""Contribution rules over the round's game (``coalitions.py``): Shapley and leave-one-out.

``shapley`` is exact up to ``shapley_exact_max`` players (``2**n - 2`` evaluations, one more when
the round's global model is not the grand coalition). Beyond, it is estimated by stratified
sampling (``shapley.stratified_shapley``): the outer strata exact (``2 n`` evaluations: each
client alone, and leave-one-out), the inner ones sampled along antithetic permutations within
``shapley_budget`` evaluations (or, where that budget cannot buy an inner sample, all of it spent
on antithetic permutations: ``shapley.sampled_shapley``), with a seed that is a hash of the round's
inputs (``round_seed``): anyone re-running the round draws the same permutations, and the oracle
cannot pick them. Measured against plain permutation sampling and sampled Banzhaf values in
``bench/contributions.py``. ``leave-one-out`` is ``v(N) - v(N - i)``: ``n`` evaluations at most.

A contribution is ``max(0, value)``: an update that makes the model worse earns nothing, it does
not take from the others. When the rule cannot aggregate some coalition (Multi-Krum needs more than
``2f + 2`` updates) Shapley falls back to leave-one-out, and that to the aggregation weights; the
note says which and why.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flb_dapp.exceptions import AggregationError
from flb_dapp.rounds.coalitions import build_game, round_seed
from flb_dapp.rounds.results import Decision
from flb_dapp.rounds.shapley import HashStream, exact_shapley, leave_one_out, sampled_shapley

if TYPE_CHECKING:
    from flb_dapp.rounds.coalitions import RoundGame
    from flb_dapp.rounds.computation import RoundComputation

PRE_NOISE_NOTE = (
    "coalitions are aggregated before the DP noise (the same noise on every coalition would only "
    "add variance)"
)


@dataclass
class Scored:
    """What a contribution rule found: per-client values, the rule that produced them, its cost."""

    contributions: dict[str, float]
    rule: str
    evaluations: int = 0
    seed: str = ""
    zeroed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _positive(value: float) -> float:
    return value if math.isfinite(value) and value > 0 else 0.0


def _shapley(run: RoundComputation, game: RoundGame, scored: Scored) -> list[float]:
    n = game.n
    if n <= run.settings.shapley_exact_max:
        scored.rule = "shapley-exact"
        game.evaluate_ahead(lambda g: exact_shapley(g.n, g.value))
        return exact_shapley(n, game.value)
    seed = round_seed(run.inputs.round, game.players, run.inputs.previous_global_cid)
    scored.seed = seed.hex()
    budget = run.settings.shapley_budget
    # A fresh stream for each pass: the dry pass and the real one draw the same permutations.
    game.evaluate_ahead(lambda g: sampled_shapley(g, budget, HashStream(seed)))
    scored.rule, values, permutations = sampled_shapley(game, budget, HashStream(seed))
    scored.notes.append(f"{permutations} sampled permutations")
    return values


def _values(run: RoundComputation, game: RoundGame, scored: Scored) -> list[float] | None:
    """The rule's values, falling back (Shapley -> leave-one-out -> None) when a coalition cannot
    be aggregated."""
    if run.settings.scoring == "shapley":
        try:
            return _shapley(run, game, scored)
        except AggregationError as exc:
            scored.notes.append(f"shapley impossible ({exc})")
            scored.seed = ""
    try:
        scored.rule = "leave-one-out"
        game.evaluate_ahead(lambda g: leave_one_out(g.n, g.value))
        return leave_one_out(game.n, game.value)
    except AggregationError as exc:
        scored.notes.append(f"leave-one-out impossible ({exc})")
        return None


def score_contributions(run: RoundComputation, chosen: Sequence[Decision]) -> Scored:
    """Each included client's contribution under the round's rule (``settings.scoring``)."""
    game, zeroed, pre_noise = build_game(run, chosen)
    scored = Scored(contributions={d.client: 0.0 for d in chosen}, rule="none", zeroed=zeroed)
    if game.n == 0:
        return scored
    if not math.isfinite(game.base_loss):
        scored.notes.append("the previous global model's loss is not finite: no coalition has a value")
        return scored
    if pre_noise:
        scored.notes.append(PRE_NOISE_NOTE)
    values = _values(run, game, scored)
    scored.evaluations = game.evaluations
    if values is None:
        # NOTE: the first build's fallback: the rule's own weights, which robust rules always have.
        weights = run.result("aggregate").weights
        scored.rule = "aggregation-weights"
        scored.notes.append("contributions are the aggregation weights")
        scored.contributions.update({p: float(weights.get(p, 0.0)) for p in game.players})
        return scored
    scored.contributions.update({p: _positive(v) for p, v in zip(game.players, values, strict=True)})
    return scored
