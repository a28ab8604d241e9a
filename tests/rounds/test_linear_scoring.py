"""On the tiny model: the linear path (every coalition from one set of decoded, weighted deltas)
gives the contributions of the exact path (re-aggregating with the strategy for every coalition, as
the first build did for leave-one-out), and the same rewards.

Tolerance: the exact path sums float32 products in float32 (rounding up to ``n * 2**-24`` relative
per parameter), the linear path sums in float64 and rounds once; the models then differ in the last
bits of some parameters, and their losses in about the 8th digit. Measured on these three clients:
4e-16 (uniform weights: halves are exact) and 5e-8 (sample weights) on contributions of 0.05-0.15;
``1e-6`` leaves a margin of 20, and is 1e-5 of the smallest contribution.
"""

from __future__ import annotations

from functools import partial

import pytest

from flb_dapp.aggregation import ClientUpdate
from flb_dapp.rewards import allocate
from flb_dapp.rounds import MemoryJournal, RoundComputation, RoundSettings
from flb_dapp.rounds.coalitions import ExactSubsets, RoundGame, build_game
from flb_dapp.rounds.combining import LazyDelta, combine, included
from tests.adversarial.lab import BUDGET, RoundLab, build_lab

pytestmark = pytest.mark.slow
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> RoundLab:
    return build_lab(tmp_path_factory.mktemp("linear-scoring"))


def first_build_leave_one_out(run: RoundComputation) -> dict[str, float]:
    """The first build's rule: re-aggregate without each client through ``combine``, evaluate."""
    chosen = included(run.result("validate").accepted, run.result("aggregate").weights)
    loss_all = float(run.result("evaluate").after.loss)  # type: ignore[arg-type]
    out = {}
    for decision in chosen:
        without, _, _ = combine(run, [d for d in chosen if d is not decision])
        out[decision.client] = max(0.0, float(run.scorer.evaluate(without).loss) - loss_all)
    return out


@pytest.mark.parametrize(
    ("strategy", "max_reward_difference"),
    [({"name": "fedavg", "weighting": "uniform"}, 0), ({"name": "fedavg"}, 1)],
)
def test_linear_leave_one_out_is_the_exact_one(
    lab: RoundLab, strategy: dict[str, str], max_reward_difference: int
) -> None:
    refs = [lab.ref(a) for a in lab.honest]
    settings = RoundSettings(strategy=strategy, scoring="leave-one-out")
    run = RoundComputation(lab.inputs(refs), settings, lab.store, lab.scorer, MemoryJournal())
    outcome = run.run()
    linear = run.result("score").contributions
    exact = first_build_leave_one_out(run)
    assert set(linear) == set(exact) and min(exact.values()) > 0.01
    assert max(abs(linear[c] - exact[c]) for c in exact) <= TOLERANCE
    exact_rewards = allocate(exact, BUDGET, {}).round_rewards
    differences = [abs(a - exact_rewards[c]) for c, a in outcome.rewards.round_rewards.items()]
    # Uniform weights (the default): the same amounts. Sample weights: one unit in a million at most.
    assert max(differences) <= max_reward_difference
    assert outcome.report.rewards.evaluations == 3


def test_every_coalition_of_the_linear_game_matches_the_strategy(lab: RoundLab) -> None:
    refs = [lab.ref(a) for a in lab.honest]
    run = RoundComputation(
        lab.inputs(refs), RoundSettings(strategy={"name": "fedavg"}), lab.store, lab.scorer, MemoryJournal()
    )
    run.run()
    chosen = included(run.result("validate").accepted, run.result("aggregate").weights)
    linear, _, _ = build_game(run, chosen)
    updates = [
        ClientUpdate(d.client, d.num_samples, LazyDelta(partial(run.load_update, d.cid), run.base))
        for d in sorted(chosen, key=lambda d: d.client)
    ]
    exact = RoundGame(linear.players, ExactSubsets(run, updates), lab.scorer, run.base, 1, linear.base_loss)
    coalitions = range(1, 1 << linear.n)
    assert max(abs(linear.value(m) - exact.value(m)) for m in coalitions) <= TOLERANCE
    assert exact.evaluations == 7 and linear.evaluations == 6  # the grand coalition was free


def test_the_order_of_submissions_does_not_change_the_rewards(lab: RoundLab) -> None:
    refs = [lab.ref(a) for a in lab.honest]
    first = lab.run(refs)
    second = lab.run(list(reversed(refs)))
    assert first.rewards.tree.root_hex == second.rewards.tree.root_hex
    assert first.report.rewards.rule == "shapley-exact" and first.report.rewards.evaluations == 6
