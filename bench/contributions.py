"""Benchmark: which contribution rule should pay a round's clients.

Run from the repo root: ``.venv/bin/python bench/contributions.py [seeds]`` (about 1.5 minutes on
2 cores; ``seeds`` defaults to 5).

Five honest clients train the tiny model on overlapping random samples of the bundled task's train
split (20, 40, 80, 160 and 320 of its 400 questions; client ``i`` always draws the same sample, only
the training seed changes between seeds). A copier submits honest client 1's update under its own
address, an attacker submits honest client 0's update sign-flipped and scaled by 10 (``flb
simulate``'s ``poison``), a free rider submits the global model unchanged. The validate step is
first run as configured (what it rejects is reported under ``screening``); then the round is scored
with every update accepted, by editing the journaled validate result, so that the contribution rule
alone decides what they earn. Two scenarios: ``without_attacker`` and ``with_attacker``.

Per rule, over the seeds: the rewards (seed 0), each role's mean share of the budget, the number of
honest clients paid, the Spearman rank correlation of the honest clients' contributions between
seeds (stability, mean over seed pairs) and with exact Shapley (mean over seeds), how unequally the
honest clients are paid (``honest_reward_spread``: (max - min) / mean) and the evaluations spent.
The sampled estimators for cohorts past the exact cutoff (plain antithetic permutations, stratified
with exact outer strata, Banzhaf by maximum sample reuse) are swept over budgets on each round's
exact value table, 10 sampling seeds each: rank correlation with exact Shapley and the largest
error in any client's share of the budget.

Last line: one JSON object ``{"without_attacker": {"rules", "estimators", "players"},
"with_attacker": {...}, "screening", "distinct_evaluations", "seconds"}``.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from scipy.stats import spearmanr

from flb_dapp.evaluation.task import make_task
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds import MemoryJournal, RoundComputation, RoundInputs, RoundSettings, UpdateRef
from flb_dapp.rounds.coalitions import build_game, delta_digest
from flb_dapp.rounds.combining import included
from flb_dapp.rounds.shapley import (
    HashStream,
    exact_shapley,
    monte_carlo_shapley,
    sampled_banzhaf,
    stratified_shapley,
)
from flb_dapp.storage.local import LocalStore
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator, train_config
from flb_dapp.training.trainer import train_client

SEEDS = range(int(sys.argv[1]) if len(sys.argv) > 1 else 5)  # a smaller number for a quick look
HONEST = [f"0x{i:040x}" for i in range(0xA1, 0xA6)]
#: Questions each honest client draws from the 400 of the train split: overlapping, and different in
#: size, so that the clients have a true order of value for a stable rule to find.
SHARE_SIZES = (20, 40, 80, 160, 320)
COPIER, ATTACKER, FREE_RIDER = (f"0x{i:040x}" for i in (0xC1, 0xE1, 0xF1))
ROLES = {"copier": COPIER, "attacker": ATTACKER, "free_rider": FREE_RIDER}
BUDGET = 1_000_000
RULES: dict[str, dict[str, Any]] = {
    "shapley": {"scoring": "shapley"},
    "leave-one-out": {"scoring": "leave-one-out"},
    "prototype": {"scoring": "prototype"},
    # The estimate that "shapley" uses past its exact cutoff, forced here on the same rounds.
    "shapley-stratified-64": {"scoring": "shapley", "shapley_exact_max": 0, "shapley_budget": 64},
}
SWEEP = (10, 20, 40)
#: Budgets of the estimator sweep; exact Shapley costs 2**n - 2 (30 and 62 evaluations here).


class CachedScorer:
    """The evaluator, remembering each adapter's result by its tensors' digest: the rules' runs ask
    for the same coalitions, and only the wall time of the bench (not a rule's count) should drop."""

    def __init__(self, scorer: Any) -> None:
        self.scorer, self.cache = scorer, {}

    def evaluate(self, adapter: Adapter | None = None) -> Any:
        key = "base" if adapter is None else delta_digest(adapter.tensors)
        if key not in self.cache:
            self.cache[key] = self.scorer.evaluate(adapter)
        return self.cache[key]


class TableGame:
    """A round's game answered from its exact value table, counting distinct coalitions asked."""

    def __init__(self, values: dict[int, float], n: int, known: set[int]) -> None:
        self.values, self.n, self.evaluations, self._asked = values, n, 0, set(known)

    def value(self, mask: int) -> float:
        if mask not in self._asked:
            self._asked.add(mask)
            self.evaluations += 1
        return self.values[mask]


def with_delta(base: Adapter, delta: dict[str, np.ndarray], client: str, samples: int) -> Adapter:
    tensors = {k: (base.tensors[k] + delta[k]).astype(np.float32) for k in base.tensors}
    return Adapter(tensors, base.metadata.with_(round=1, client=client, num_samples=samples))


def round_updates(spec: TaskSpec, cache: Path, base: Adapter, seed: int) -> list[Adapter]:
    train = list(make_task(seed=0).train)
    shares = [random.Random(100 + i).sample(train, size) for i, size in enumerate(SHARE_SIZES)]
    honest = [
        train_client(train_config(spec, cache, seed=seed * 10 + i), share, base, client=c, round=1).adapter
        for i, (c, share) in enumerate(zip(HONEST, shares, strict=True))
    ]
    deltas = [{k: a.tensors[k] - base.tensors[k] for k in base.tensors} for a in honest]
    samples = honest[0].metadata.num_samples
    copier = Adapter(dict(honest[1].tensors), honest[1].metadata.with_(client=COPIER))
    attacker = with_delta(base, {k: -10.0 * v for k, v in deltas[0].items()}, ATTACKER, samples)
    free_rider = with_delta(base, {k: np.zeros_like(v) for k, v in deltas[0].items()}, FREE_RIDER, samples)
    return [*honest, copier, attacker, free_rider]


def unscreened_journal(inputs: RoundInputs, store: LocalStore, scorer: Any) -> tuple[MemoryJournal, dict]:
    """The validate step as configured, then the same decisions with every decodable update accepted."""
    journal = MemoryJournal()
    RoundComputation(inputs, RoundSettings(), store, scorer, journal).result("validate")
    screening = {
        role: d["reason"]
        for d in journal.results["validate"]["decisions"]
        for role, c in ROLES.items()
        if d["client"] == c
    }
    for decision in journal.results["validate"]["decisions"]:
        decision["accepted"], decision["reason"] = True, ""
    return journal, screening


def run_rules(inputs: RoundInputs, store: LocalStore, scorer: Any, journal: MemoryJournal) -> dict[str, Any]:
    out = {}
    for name, rules in RULES.items():
        replay = MemoryJournal()
        replay.results = {"fetch": journal.results["fetch"], "validate": journal.results["validate"]}
        outcome = RoundComputation(inputs, RoundSettings(**rules), store, scorer, replay).run()
        rewards = outcome.rewards.round_rewards
        by_client = {c.lower(): a for c, a in rewards.items()}
        contributions = {d.client.lower(): d.contribution for d in outcome.report.inputs}
        out[name] = {
            "rewards": by_client,
            "contributions": contributions,
            "evaluations": outcome.report.rewards.evaluations,
            "rule": outcome.report.rewards.rule,
            "zeroed": outcome.report.rewards.zeroed,
        }
    return out


def value_table(
    inputs: RoundInputs, store: LocalStore, scorer: Any, journal: MemoryJournal
) -> tuple[list[str], dict[int, float], set[int]]:
    replay = MemoryJournal()
    replay.results = {k: journal.results[k] for k in ("fetch", "validate")}
    run = RoundComputation(inputs, RoundSettings(), store, scorer, replay)
    chosen = included(run.result("validate").accepted, run.result("aggregate").weights)
    game, _, _ = build_game(run, chosen)
    known = set(game.known)  # the coalitions whose value costs no evaluation
    values = {m: game.value(m) for m in range(1 << game.n)}
    return game.players, values, known


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(set(a)) < 2 or len(set(b)) < 2:
        return None  # a constant ranking (everyone 0) has no rank correlation
    return float(spearmanr(a, b).statistic)


def mean(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return round(float(np.mean(kept)), 4) if kept else None


def shares(values: list[float]) -> list[float]:
    """Budget shares as the score step pays them: positive values, normalised."""
    positive = [max(0.0, v) for v in values]
    total = sum(positive)
    return [p / total if total > 0 else 0.0 for p in positive]


def sweep(
    players: list[str], values: dict[int, float], known: set[int], exact: list[float]
) -> dict[str, Any]:
    """Each estimator at each budget, 10 sampling seeds: rank correlation with exact Shapley over the
    honest clients, and the largest error in any client's share of the budget."""
    honest_idx = [i for i, p in enumerate(players) if p in HONEST]
    exact_shares = shares(exact)
    out: dict[str, Any] = {}
    estimators = (
        ("monte-carlo", monte_carlo_shapley),
        ("stratified", stratified_shapley),
        ("banzhaf", sampled_banzhaf),
    )
    for name, estimator in estimators:
        for budget in SWEEP:
            corr, cost, error = [], [], []
            for s in range(10):
                game = TableGame(values, len(players), known)
                estimate, _ = estimator(game, budget, HashStream(bytes([s])))
                corr.append(spearman([estimate[i] for i in honest_idx], [exact[i] for i in honest_idx]))
                error.append(max(abs(a - b) for a, b in zip(shares(estimate), exact_shares, strict=True)))
                cost.append(game.evaluations)
            out[f"{name}-{budget}"] = {
                "spearman_vs_exact": corr,
                "max_share_error": error,
                "evaluations": float(np.mean(cost)),
            }
    return out


def reward_spread(rows: list[dict[str, Any]]) -> float | None:
    """Mean over seeds of (largest - smallest honest reward) / mean honest reward: how unequally a
    rule pays clients whose data are alike (0: equal shares)."""
    spreads = []
    for row in rows:
        paid = [row["rewards"].get(c, 0) for c in HONEST]
        if sum(paid) > 0:
            spreads.append((max(paid) - min(paid)) / (sum(paid) / len(paid)))
    return mean(spreads)  # type: ignore[arg-type]


def summarize(per_seed: list[dict[str, Any]], exact_by_seed: list[dict[str, float]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in RULES:
        rows = [seed[name] for seed in per_seed]
        vectors = [[row["contributions"][c] for c in HONEST] for row in rows]
        shares = {
            role: mean([sum(row["rewards"].get(c, 0) for c in clients) / BUDGET for row in rows])
            for role, clients in (("honest", HONEST), *((r, [c]) for r, c in ROLES.items()))
        }
        summary[name] = {
            "rule": rows[0]["rule"],
            "rewards_seed0": {c[-2:]: rows[0]["rewards"].get(c, 0) for c in [*HONEST, *ROLES.values()]},
            "share": shares,
            "honest_paid": mean([sum(1 for c in HONEST if row["rewards"].get(c, 0) > 0) for row in rows]),
            "stability_spearman": mean([spearman(a, b) for a, b in itertools.combinations(vectors, 2)]),
            "spearman_vs_exact_shapley": mean(
                [spearman(v, [e[c] for c in HONEST]) for v, e in zip(vectors, exact_by_seed, strict=True)]
            ),
            "honest_reward_spread": reward_spread(rows),
            "evaluations": mean([row["evaluations"] for row in rows]),
        }
    return summary


def score_scenario(
    updates: list[Adapter], store: LocalStore, base_cid: str, spec: TaskSpec, scorer: Any
) -> tuple[dict[str, Any], dict[str, float], dict[str, Any], dict[str, str]]:
    """One round: the rules' results, exact Shapley by client, the estimator sweep, the screening."""
    refs = [
        UpdateRef(u.metadata.client, store.put_bytes(encode_adapter(u)), u.metadata.num_samples)
        for u in updates
    ]
    inputs = RoundInputs("0x" + "c" * 40, 1337, 1, base_cid, refs, budget=BUDGET, task=spec.to_dict())
    journal, screening = unscreened_journal(inputs, store, scorer)
    rules = run_rules(inputs, store, scorer, journal)
    players, values, known = value_table(inputs, store, scorer, journal)
    exact = exact_shapley(len(players), values.__getitem__)
    return rules, dict(zip(players, exact, strict=True)), sweep(players, values, known, exact), screening


def estimator_summary(sweeps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        key: {
            "spearman_vs_exact": mean([v for s in sweeps for v in s[key]["spearman_vs_exact"]]),
            "max_share_error": mean([v for s in sweeps for v in s[key]["max_share_error"]]),
            "evaluations": mean([s[key]["evaluations"] for s in sweeps]),
        }
        for key in sweeps[0]
    }


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    spec = TaskSpec(model="tiny", steps=30, eval_limit=60)
    scenarios = {"without_attacker": lambda c: c != ATTACKER, "with_attacker": lambda c: True}
    results: dict[str, dict[str, list[Any]]] = {
        name: {"rules": [], "exact": [], "sweeps": []} for name in scenarios
    }
    screening: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        store = LocalStore(Path(tmp) / "store")
        base = initial_adapter(spec, cache)
        base_cid = store.put_bytes(encode_adapter(base))
        scorer = CachedScorer(make_evaluator(spec, cache))
        for seed in SEEDS:
            updates = round_updates(spec, cache, base, seed)
            for name, keep in scenarios.items():
                chosen = [u for u in updates if keep(u.metadata.client)]
                rules, exact, swept, screened = score_scenario(chosen, store, base_cid, spec, scorer)
                results[name]["rules"].append(rules)
                results[name]["exact"].append(exact)
                results[name]["sweeps"].append(swept)
                screening.update(screened)
        distinct_evaluations = len(scorer.cache)
    document = {
        name: {
            "rules": summarize(r["rules"], r["exact"]),
            "estimators": estimator_summary(r["sweeps"]),
            "players": len(r["exact"][0]),
        }
        for name, r in results.items()
    }
    document["screening"] = screening
    document["distinct_evaluations"] = distinct_evaluations
    document["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(document))


if __name__ == "__main__":
    main()
