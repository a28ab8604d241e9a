"""Benchmark: which aggregation rule and screening defaults stay sound when some clients lie.

Run from the repo root: ``.venv/bin/python bench/adversarial.py`` (about a minute on 2 cores).
Three honest clients train the tiny model on the bundled task (50 steps each, their non-IID
shares), then one round is computed by the real round computation (local store, real evaluator)
for each candidate rule under each attack:

* ``none``: the three honest updates;
* ``sample_liar``: client 0 claims the task's maximum sample count (the most that passes the cap)
  while the others report their true counts;
* ``sybils``: two honest clients and three Sybils whose deltas are a random direction at 1/30 of an
  honest norm (above the free-rider floor, so they are not screened out);
* ``noisy_copy``: a fourth client submits client 0's delta plus 10% Gaussian noise.

For each (rule, attack): the global model's held-out accuracy, the attackers' share of the round's
rewards (leave-one-out scoring) and how many honest clients were accepted. The first build's
screening (``norm_factor=20``, no copy detection) is measured too, for the Sybil and copy attacks.

Last line: one JSON object ``{"rules": {rule: {attack: {...}}}, "first_build": {...},
"honest_norms": [...], "honest_cosines": [...]}``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from flb_dapp.aggregation import l2_norm
from flb_dapp.evaluation.task import make_task
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.rounds import MemoryJournal, RoundComputation, RoundInputs, RoundSettings, UpdateRef
from flb_dapp.screening import flatten
from flb_dapp.storage.local import LocalStore
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator, train_config
from flb_dapp.training.trainer import train_client

RULES: dict[str, dict[str, Any]] = {
    "fedavg-samples": {"name": "fedavg"},
    "fedavg-uniform": {"name": "fedavg", "weighting": "uniform"},
    "trimmed-mean": {"name": "trimmed-mean", "beta": 0.2},
    "median": {"name": "median"},
}
ADDRESSES = [f"0x{i:040x}" for i in range(1, 11)]


def with_delta(base: Adapter, delta: dict[str, np.ndarray], client: str, samples: int) -> Adapter:
    tensors = {k: (base.tensors[k] + delta[k]).astype(np.float32) for k in base.tensors}
    return Adapter(tensors, base.metadata.with_(round=1, client=client, num_samples=samples))


def run_round(
    store: LocalStore,
    base_cid: str,
    updates: list[Adapter],
    spec: TaskSpec,
    settings: RoundSettings,
    scorer: Any,
) -> Any:
    refs = [
        UpdateRef(u.metadata.client, store.put_bytes(encode_adapter(u)), u.metadata.num_samples)
        for u in updates
    ]
    inputs = RoundInputs("0x" + "c" * 40, 1337, 1, base_cid, refs, budget=1_000_000, task=spec.to_dict())
    return RoundComputation(inputs, settings, store, scorer, MemoryJournal()).run()


def summary(outcome: Any, attackers: set[str], honest: set[str]) -> dict[str, Any]:
    rewards = outcome.rewards.round_rewards
    total = sum(rewards.values()) or 1
    attacker_share = sum(a for c, a in rewards.items() if c.lower() in attackers) / total
    return {
        "accuracy": round(outcome.metric, 4),
        "attacker_reward_share": round(attacker_share, 4),
        "honest_accepted": sum(1 for c in outcome.accepted if c.lower() in honest),
        "honest_paid": sum(1 for c, a in rewards.items() if c.lower() in honest and a > 0),
    }


def make_attacks(
    base: Adapter, deltas: list[dict[str, np.ndarray]], samples: list[int], spec: TaskSpec
) -> dict[str, tuple[list[Adapter], set[str], set[str]]]:
    """Each attack's updates, its attackers and the honest clients it should not hurt."""
    norms = [l2_norm(d) for d in deltas]
    vectors = [flatten(d) for d in deltas]
    rng = np.random.default_rng(0)

    def honest(i: int) -> Adapter:
        return with_delta(base, deltas[i], ADDRESSES[i], samples[i])

    def sybil(j: int) -> Adapter:
        direction = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in deltas[0].items()}
        scale = (np.mean(norms) / 30) / l2_norm(direction)
        return with_delta(base, {k: v * scale for k, v in direction.items()}, ADDRESSES[5 + j], samples[0])

    noisy = {
        k: v + rng.normal(0, 0.1 * norms[0] / np.sqrt(vectors[0].size), v.shape).astype(np.float32)
        for k, v in deltas[0].items()
    }
    attacks: dict[str, tuple[list[Adapter], set[str], set[str]]] = {
        "none": ([honest(0), honest(1), honest(2)], set(), set(ADDRESSES[:3])),
        "sample_liar": (
            [with_delta(base, deltas[0], ADDRESSES[0], spec.sample_cap), honest(1), honest(2)],
            {ADDRESSES[0]},
            set(ADDRESSES[1:3]),
        ),
        "sybils": (
            [honest(1), honest(2), sybil(0), sybil(1), sybil(2)],
            set(ADDRESSES[5:8]),
            set(ADDRESSES[1:3]),
        ),
        "noisy_copy": (
            [honest(0), honest(1), honest(2), with_delta(base, noisy, ADDRESSES[3], samples[0])],
            {ADDRESSES[3]},
            set(ADDRESSES[:3]),
        ),
    }
    return attacks


def main() -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    spec = TaskSpec(model="tiny", steps=50, eval_limit=100)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        store = LocalStore(Path(tmp) / "store")
        base = initial_adapter(spec, cache)
        base_cid = store.put_bytes(encode_adapter(base))
        scorer = make_evaluator(spec, cache)
        shares = make_task(seed=0).split_non_iid(3, seed=0)
        deltas, samples = [], []
        for i, share in enumerate(shares):
            config = train_config(spec, cache, seed=i)
            trained = train_client(config, share, base, client=ADDRESSES[i], round=1).adapter
            deltas.append({k: trained.tensors[k] - base.tensors[k] for k in base.tensors})
            samples.append(trained.metadata.num_samples)
        norms = [l2_norm(d) for d in deltas]
        vectors = [flatten(d) for d in deltas]
        cosines = [
            float(vectors[i] @ vectors[j] / (np.linalg.norm(vectors[i]) * np.linalg.norm(vectors[j])))
            for i in range(3)
            for j in range(i + 1, 3)
        ]
        attacks = make_attacks(base, deltas, samples, spec)
        results: dict[str, dict[str, Any]] = {}
        for rule, strategy in RULES.items():
            results[rule] = {}
            for attack, (updates, attackers, honest_set) in attacks.items():
                outcome = run_round(store, base_cid, updates, spec, RoundSettings(strategy=strategy), scorer)
                results[rule][attack] = summary(outcome, attackers, honest_set)
        first = RoundSettings(strategy={"name": "fedavg"}, norm_factor=20.0, duplicate_cosine=1.0)
        first_build = {}
        for attack in ("sybils", "noisy_copy"):
            updates, attackers, honest_set = attacks[attack]
            first_build[attack] = summary(
                run_round(store, base_cid, updates, spec, first, scorer), attackers, honest_set
            )
    print(
        json.dumps(
            {
                "rules": results,
                "first_build": first_build,
                "honest_norms": [round(n, 3) for n in norms],
                "honest_cosines": [round(c, 3) for c in cosines],
                "sample_cap": spec.sample_cap,
                "honest_samples": samples,
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
