"""Coalitions evaluated ahead in batches (the training pool's scorer: every worker at once) give
the same round as coalitions evaluated one by one: the same values, report, evaluation count and
rewards, for every rule, including a rule that cannot aggregate some coalition."""

from __future__ import annotations

from pathlib import Path

import pytest

from flb_dapp.rounds import RoundSettings
from tests.rounds.contribution_lab import BatchingScorer, CoalitionScorer, ContributionLab, Loss

BONUS: Loss = lambda s: 10.0 - sum(0.1 * (i + 1) for i in s) - (3.0 if {0, 1, 2} <= s else 0.0)  # noqa: E731


@pytest.fixture
def lab(tmp_path: Path) -> ContributionLab:
    return ContributionLab(tmp_path)


@pytest.mark.parametrize(
    ("players", "settings", "rule", "evaluations"),
    [
        (4, RoundSettings(), "shapley-exact", 2**4 - 2),  # all but the empty and the grand coalition
        (10, RoundSettings(shapley_budget=60), "shapley-stratified", 48),
        (10, RoundSettings(shapley_budget=20), "shapley-permutations", 18),
        (5, RoundSettings(scoring="leave-one-out"), "leave-one-out", 5),
    ],
)
def test_batched_coalitions_give_the_same_round(
    lab: ContributionLab, players: int, settings: RoundSettings, rule: str, evaluations: int
) -> None:
    lazy_scorer, batching_scorer = CoalitionScorer(BONUS), BatchingScorer(BONUS)
    lazy = lab.computation(lab.players(players), lazy_scorer, settings).run()
    batched = lab.computation(lab.players(players), batching_scorer, settings).run()
    assert (batched.report.rewards.rule, batched.report.rewards.evaluations) == (rule, evaluations)
    assert batched.report.to_json() == lazy.report.to_json()
    assert batched.rewards.tree.root_hex == lazy.rewards.tree.root_hex
    # the evaluate step's pair, then the coalitions in batches of the scorer's parallelism (3)
    full, rest = divmod(evaluations, 3)
    assert batching_scorer.batches == [2] + [3] * full + [rest] * (rest > 0)
    assert sorted(batching_scorer.calls, key=sorted) == sorted(lazy_scorer.calls, key=sorted)


def test_a_coalition_the_rule_cannot_aggregate_falls_back_as_without_batches(lab: ContributionLab) -> None:
    krum = RoundSettings(strategy={"name": "multi-krum", "num_malicious": 0})
    lazy = lab.computation(lab.players(3), CoalitionScorer(BONUS), krum).run()
    batched = lab.computation(lab.players(3), BatchingScorer(BONUS), krum).run()
    assert batched.report.rewards.rule == "aggregation-weights"
    assert batched.report.to_json() == lazy.report.to_json()
