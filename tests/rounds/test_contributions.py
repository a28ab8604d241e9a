"""Contribution rules of the score step: exact Shapley on games whose values are known by hand,
its axioms (efficiency, symmetry), the zero rules for copies, free riders and attackers, the
determinism of the Monte Carlo estimate, and what each rule costs in evaluations."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
from eth_utils import to_checksum_address

from flb_dapp.aggregation import ClientUpdate, FedAvg, make_strategy
from flb_dapp.exceptions import RoundError
from flb_dapp.report import canonical_json, parse_report
from flb_dapp.rounds import RoundSettings
from flb_dapp.rounds.coalitions import ZERO_DELTA, copy_reason, round_seed
from flb_dapp.rounds.contributions import PRE_NOISE_NOTE
from flb_dapp.rounds.shapley import HashStream, exact_shapley, leave_one_out
from tests.rounds.contribution_lab import (
    CLIENTS,
    KEY_A,
    CoalitionScorer,
    ContributionLab,
    Loss,
    unit_delta,
)


@pytest.fixture
def lab(tmp_path: Path) -> ContributionLab:
    return ContributionLab(tmp_path)


def additive(values: dict[int, float], pairs: dict[tuple[int, ...], float] | None = None) -> Loss:
    """loss = 10 - the members' own values - each complete group's bonus."""
    groups = pairs or {}
    return lambda s: (
        10.0 - sum(values.get(i, 0.0) for i in s) - sum(b for g, b in groups.items() if set(g) <= s)
    )


def rewards_of(outcome, clients: list[str]) -> list[int]:  # type: ignore[no-untyped-def]
    return [outcome.rewards.round_rewards[to_checksum_address(c)] for c in clients]


# --- the pure arithmetic ---------------------------------------------------------------------------------
def test_exact_shapley_and_leave_one_out_of_a_hand_computed_game() -> None:
    # v(S) = a_0 [0 in S] + 2 [1 in S] + 3 [2 in S] + 2 [0, 1 in S]: the pair's bonus is split in two.
    def v(mask: int) -> float:
        return 1.0 * (mask & 1) + 2.0 * (mask >> 1 & 1) + 3.0 * (mask >> 2 & 1) + 2.0 * (mask & 3 == 3)

    assert exact_shapley(3, v) == [2.0, 3.0, 3.0]
    assert leave_one_out(3, v) == [3.0, 4.0, 3.0]


def test_exact_shapley_is_efficient_and_symmetric_on_a_random_game() -> None:
    rng = np.random.default_rng(5)
    table = [0.0, *rng.normal(size=63)]
    phi = exact_shapley(6, table.__getitem__)
    assert math.fsum(phi) == pytest.approx(table[63] - table[0], abs=1e-12)
    # Players 0 and 1 made interchangeable: v(S + 0) == v(S + 1) for every S without them.
    for mask in range(64):
        if mask & 3 == 2:
            table[mask] = table[mask ^ 3]
    phi = exact_shapley(6, table.__getitem__)
    assert phi[0] == pytest.approx(phi[1], abs=1e-12)


def test_the_hash_stream_is_a_fixed_function_of_its_seed() -> None:
    assert HashStream(b"flb").permutation(8) == HashStream(b"flb").permutation(8)
    assert HashStream(b"flb").permutation(8) != HashStream(b"flb2").permutation(8)
    assert sorted(HashStream(b"x").permutation(10)) == list(range(10))
    assert 0 <= HashStream(b"x").coalition(70) < 1 << 70


# --- the round's game --------------------------------------------------------------------------------------
def test_the_default_rule_is_exact_shapley_with_hand_computed_values_and_cost(lab: ContributionLab) -> None:
    scorer = CoalitionScorer(additive({0: 1.0, 1: 2.0, 2: 3.0}, {(0, 1): 2.0}))
    outcome = lab.computation(lab.players(3), scorer).run()
    contributions = {d.client: d.contribution for d in outcome.report.inputs}
    assert contributions == {CLIENTS[0]: 2.0, CLIENTS[1]: 3.0, CLIENTS[2]: 3.0}
    assert rewards_of(outcome, CLIENTS[:3]) == [250_000, 375_000, 375_000]
    rewards = outcome.report.rewards
    assert (rewards.scoring, rewards.rule, rewards.evaluations, rewards.seed, rewards.note) == (
        "shapley",
        "shapley-exact",
        6,  # 2**3 coalitions less the empty one and the round's global model
        "",
        "",
    )
    assert len(scorer.calls) == 2 + 6  # the evaluate step's two, then one per coalition
    assert len(set(scorer.calls)) == 8


def test_leave_one_out_costs_n_evaluations_and_pays_overlapping_clients_nothing(lab: ContributionLab) -> None:
    # Clients 0 and 1 hold the same knowledge (either one brings the 2); client 2 brings 1.
    loss = lambda s: 10.0 - 2.0 * bool(s & {0, 1}) - 1.0 * (2 in s)  # noqa: E731
    refs = lab.players(3)
    shapley = lab.computation(refs, CoalitionScorer(loss)).run()
    assert [d.contribution for d in shapley.report.inputs] == [1.0, 1.0, 1.0]  # symmetric: equal
    assert rewards_of(shapley, CLIENTS[:3]) == [333_333, 333_333, 333_333]
    scorer = CoalitionScorer(loss)
    loo = lab.computation(refs, scorer, RoundSettings(scoring="leave-one-out")).run()
    assert [d.contribution for d in loo.report.inputs] == [0.0, 0.0, 1.0]
    assert (loo.report.rewards.rule, loo.report.rewards.evaluations, len(scorer.calls)) == (
        "leave-one-out",
        3,
        5,
    )


def test_shapley_values_add_up_to_the_rounds_improvement(lab: ContributionLab) -> None:
    # A concave game: every marginal is positive, so no value is clipped at zero.
    weights = {i: 0.3 + 0.1 * i for i in range(5)}
    scorer = CoalitionScorer(lambda s: 10.0 - math.sqrt(sum(weights[i] for i in s)))
    outcome = lab.computation(lab.players(5), scorer).run()
    total = math.fsum(d.contribution for d in outcome.report.inputs)
    improvement = outcome.report.metrics.before.loss - outcome.report.metrics.after.loss  # type: ignore[operator]
    assert total == pytest.approx(improvement, abs=1e-12) and improvement == pytest.approx(math.sqrt(2.5))


def test_copier_free_rider_and_attackers_earn_nothing(lab: ContributionLab) -> None:
    honest = lab.players(2)
    copier = lab.ref(CLIENTS[2], unit_delta(0))  # client 0's update under its own address
    free_rider = lab.ref(CLIENTS[3], unit_delta(None))
    rejected = lab.ref(CLIENTS[4], unit_delta(4, scale=1000.0))  # over the task's norm bound
    harmful = lab.ref(CLIENTS[5], unit_delta(5))  # accepted, but it makes the model worse
    refs = [*honest, copier, free_rider, rejected, harmful]
    loss = additive({0: 2.0, 1: 2.0, 5: -5.0})
    first = lab.computation(refs, CoalitionScorer(loss)).run()
    reasons = {d.client: d.reason for d in first.report.inputs}
    assert reasons[CLIENTS[2]] == f"duplicate of the update of {CLIENTS[0]}"  # screening caught the copy
    assert reasons[CLIENTS[4]].startswith("update norm 1000 exceeds the task's bound")
    journal = lab.accept_all(refs, CoalitionScorer(loss))
    journal.results["validate"]["decisions"][4].update(accepted=False, reason="over the norm bound")
    for scoring in ("shapley", "leave-one-out", "prototype"):
        replay = copy.deepcopy(journal)
        outcome = lab.computation(
            refs, CoalitionScorer(loss), RoundSettings(scoring=scoring), journal=replay
        ).run()
        paid = dict(zip(CLIENTS[:6], rewards_of(outcome, CLIENTS[:6]), strict=True))
        assert outcome.report.rewards.zeroed == {CLIENTS[2]: copy_reason(CLIENTS[0]), CLIENTS[3]: ZERO_DELTA}
        assert [paid[c] for c in CLIENTS[2:6]] == [0, 0, 0, 0], scoring
        if scoring != "prototype":  # (the synthetic accuracy never moves: prototype pays nobody)
            assert paid[CLIENTS[0]] == paid[CLIENTS[1]] == 500_000
            # The players are not the accepted updates: the grand coalition costs an evaluation too.
            assert outcome.report.rewards.evaluations == (7 if scoring == "shapley" else 4)


def test_of_two_identical_updates_the_earlier_commit_plays(lab: ContributionLab) -> None:
    refs = [lab.ref(CLIENTS[5], unit_delta(0)), *lab.players(2)]  # the copy was committed first
    journal = lab.accept_all(refs, CoalitionScorer(additive({0: 1.0, 1: 1.0})))
    run = lab.computation(refs, CoalitionScorer(additive({0: 1.0, 1: 1.0})), journal=journal)
    outcome = run.run()
    assert outcome.report.rewards.zeroed == {CLIENTS[0]: copy_reason(CLIENTS[5])}
    assert rewards_of(outcome, [CLIENTS[5], CLIENTS[0], CLIENTS[1]]) == [500_000, 0, 500_000]


def test_sampling_beyond_the_cutoff_is_a_deterministic_function_of_the_round(lab: ContributionLab) -> None:
    values = {i: 0.1 * (i + 1) for i in range(10)}
    loss = additive(values, {(0, 1, 2): 3.0})  # a three-way bonus: the sampled strata are not exact
    settings = RoundSettings(shapley_budget=60)
    runs = []
    for _ in range(2):
        scorer = CoalitionScorer(loss)
        runs.append((lab.computation(lab.players(10), scorer, settings).run(), scorer))
    (first, scorer), (second, _) = runs
    rewards = first.report.rewards
    # 20 evaluations for the outer strata, then (60 - 20) // (2 * 7) = 2 antithetic pairs.
    assert rewards.rule == "shapley-stratified" and rewards.note == "4 sampled permutations"
    assert rewards.seed == round_seed(1, CLIENTS[:10], lab.base_cid).hex()
    assert rewards.evaluations == len(scorer.calls) - 2 <= 60
    assert [d.contribution for d in first.report.inputs] == [d.contribution for d in second.report.inputs]
    assert first.rewards.tree.root_hex == second.rewards.tree.root_hex
    contributions = [d.contribution for d in first.report.inputs]
    # Clients 3..9 take no part in the bonus: every marginal of theirs is their own value, exactly.
    assert contributions[3:] == pytest.approx([values[i] for i in range(3, 10)], abs=1e-12)
    assert all(c > values[i] for i, c in enumerate(contributions[:3]))  # a share of the bonus each
    later = lab.computation(
        lab.players(10, round_number=2), CoalitionScorer(loss), settings, round_number=2
    ).run()
    assert later.report.rewards.seed != rewards.seed
    assert HashStream(bytes.fromhex(later.report.rewards.seed)).permutation(10) != HashStream(
        bytes.fromhex(rewards.seed)
    ).permutation(10)


def test_stratified_sampling_is_exact_on_the_outer_strata() -> None:
    """With no budget left for the inner strata, each player's value is the mean of its value alone
    and its leave-one-out value: exact when the inner marginals average to the outer ones (here
    the marginals fall linearly with the position: 4, 3, 2, 1)."""
    from flb_dapp.rounds.shapley import stratified_shapley

    class Table:
        n, evaluations = 4, 0

        def value(self, mask: int) -> float:
            self.evaluations += 1
            return [0.0, 4.0, 7.0, 9.0, 10.0][mask.bit_count()]

    game = Table()
    phi, permutations = stratified_shapley(game, budget=0, stream=HashStream(b"s"))
    assert permutations == 0 and game.evaluations == 4 + 4 + 4  # v({i}), then v(N) and v(N - i)
    assert phi == exact_shapley(4, Table().value) == [2.5, 2.5, 2.5, 2.5]


def test_a_budget_without_inner_samples_spends_itself_on_permutations() -> None:
    """Twenty clients whose updates each hurt alone and help together (non-IID shares): the outer
    strata alone value everyone below 0, so a round that improved would pay nobody; permutation
    sampling's values sum to what the whole cohort brought."""
    from flb_dapp.rounds.shapley import sampled_shapley, stratified_affordable, stratified_shapley

    n = 20

    class Table:
        """Caches its values as the round's game does: a coalition costs one evaluation."""

        def __init__(self) -> None:
            self.n, self.seen = n, set[int]()

        @property
        def evaluations(self) -> int:
            return len(self.seen)

        def value(self, mask: int) -> float:
            self.seen.add(mask)
            k = mask.bit_count()
            return 0.0 if k == 0 else -1.0 if k == 1 else 5.0 * (k - 1) / (n - 1)

    outer_only, _ = stratified_shapley(Table(), budget=64, stream=HashStream(b"s"))
    assert all(v == pytest.approx((-1.0 + 5.0 / 19) / 2) for v in outer_only)
    assert not stratified_affordable(n, 74) and stratified_affordable(n, 75)  # 2n + 1 + 2(n - 3)
    rule, values, permutations = sampled_shapley(Table(), budget=64, stream=HashStream(b"s"))
    assert (rule, permutations) == ("shapley-permutations", 2)  # 64 // (2 * 19) = 1 pair
    assert sum(values) == pytest.approx(5.0, abs=1e-9) and sum(v > 0 for v in values) == n - 2
    game = Table()
    rule, _, permutations = sampled_shapley(game, budget=75, stream=HashStream(b"s"))
    assert (rule, permutations, game.evaluations) == ("shapley-stratified", 2, 75)


def test_dp_rounds_score_coalitions_before_the_noise(lab: ContributionLab) -> None:
    loss = additive({0: 1.0, 1: 2.0, 2: 3.0}, {(0, 1): 2.0})
    dp = {"name": "fedavg", "dp": "fixed", "clip_norm": 10.0, "noise_multiplier": 1.0}
    scorer = CoalitionScorer(loss)
    outcome = lab.computation(lab.players(3), scorer, RoundSettings(strategy=dp, dp_seed=3)).run()
    assert [d.contribution for d in outcome.report.inputs] == [2.0, 3.0, 3.0]  # the noise-free game's
    assert outcome.report.rewards.note == PRE_NOISE_NOTE
    assert outcome.report.rewards.evaluations == 7  # the noised global model is not the grand coalition


def test_robust_rules_recompute_each_coalition_and_fall_back_when_they_cannot(lab: ContributionLab) -> None:
    scorer = CoalitionScorer(additive({0: 1.0, 1: 1.0, 2: 1.0}))
    median = lab.computation(lab.players(3), scorer, RoundSettings(strategy={"name": "median"})).run()
    # The median never picked client 0's values (weight 0): two players, whose grand coalition is not
    # the round's global model (that had client 0 in it), so 2**2 - 1 evaluations.
    assert [d.weight for d in median.report.inputs] == [0.0, 0.9375, 0.0625]
    assert (median.report.rewards.rule, median.report.rewards.evaluations) == ("shapley-exact", 3)
    assert rewards_of(median, CLIENTS[:3]) == [0, 500_000, 500_000]
    krum = RoundSettings(strategy={"name": "multi-krum", "num_malicious": 0})
    outcome = lab.computation(lab.players(3), CoalitionScorer(additive({0: 1.0})), krum).run()
    note = outcome.report.rewards.note
    assert note.startswith("shapley impossible (") and "; leave-one-out impossible (" in note
    assert note.endswith("; contributions are the aggregation weights")
    assert outcome.report.rewards.rule == "aggregation-weights"


def test_linear_parts_are_the_weights_and_deltas_the_rule_averages() -> None:
    deltas = [unit_delta(i, scale=3.0 * (i + 1)) for i in range(3)]
    updates = [ClientUpdate(CLIENTS[i], 10 * (i + 1), d) for i, d in enumerate(deltas)]
    parts = FedAvg().linear_parts(updates)
    assert (
        parts is not None
        and parts.noise_free
        and parts.weights == {CLIENTS[0]: 10.0, CLIENTS[1]: 20.0, CLIENTS[2]: 30.0}
    )
    clipped = make_strategy("fedavg", dp="fixed", clip_norm=4.0, noise_multiplier=0.5).linear_parts(updates)
    assert clipped is not None and not clipped.noise_free
    assert clipped.weights == dict.fromkeys(CLIENTS[:3], 1.0)
    norms = [float(np.linalg.norm(clipped.deltas[c][KEY_A])) for c in CLIENTS[:3]]
    assert norms[0] == 3.0 and all(3.99999 < n <= 4.0 for n in norms[1:])  # 6 and 9 clipped to 4
    assert make_strategy("median").linear_parts(updates) is None


def test_the_report_records_the_rule_and_old_reports_still_read(lab: ContributionLab) -> None:
    outcome = lab.computation(lab.players(2), CoalitionScorer(additive({0: 1.0, 1: 1.0}))).run()
    document = outcome.report.to_dict()
    assert (document["rewards"]["rule"], document["rewards"]["evaluations"]) == ("shapley-exact", 2)
    for key in ("rule", "evaluations", "seed", "zeroed"):
        del document["rewards"][key]
    old = parse_report(canonical_json(document)).rewards
    assert (old.rule, old.evaluations, old.seed, old.zeroed) == ("", 0, "", {})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"scoring": "banzhaf"}, "unknown scoring rule 'banzhaf'"),
        ({"shapley_exact_max": 13}, "need 0 <= shapley_exact_max <= 12"),
        ({"shapley_budget": 0}, "shapley_budget >= 1"),
    ],
)
def test_bad_scoring_settings_fail_when_built(values: dict[str, object], message: str) -> None:
    with pytest.raises(RoundError) as caught:
        RoundSettings(**values)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_exact_shapley_needs_every_coalition_once() -> None:
    asked: list[int] = []
    exact_shapley(4, lambda m: asked.append(m) or float(m.bit_count()))  # type: ignore[func-returns-value]
    assert sorted(asked) == list(range(16))
