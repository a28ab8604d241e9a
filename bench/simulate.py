"""Benchmark: `flb simulate` (sequential and parallel clients) against a plain loop of the same
training and evaluation calls, with no chain, no store and no oracle.

Run from the repo root: ``.venv/bin/python bench/simulate.py``. The task is FLB's own: 3 clients x
3 rounds x 100 steps on the tiny model. Three contenders, each a fresh subprocess run in one
interleaved pass (plain loop, flb --workers 1, flb --workers N, N = the number of cores):

* ``flb simulate`` as users run it (the CLI, a subprocess): the embedded chain, the local store,
  the oracle pipeline, claims, the plot (its default scoring: exact Shapley, 6 coalitions a round
  with 3 clients, where the plain loop evaluates 3: flb does more evaluation work than the loop).
  With ``--workers N`` the pool also builds the initial adapter and runs the oracle's evaluations.
* the plain loop (this file with ``--plain-loop``): ``train_client`` with the configs and seeds
  `flb simulate` uses (``seed*1000 + round*100 + client``, one torch thread), an ``Evaluator`` on the
  same adapters (the global adapter before and after, and each leave-one-out aggregate, which is
  what leave-one-out scoring evaluates), FedAvg of the deltas weighted by sample counts.

Time is the subprocess's wall clock; peak memory is the highest sum over the process and all its
children, sampled every 0.2 s, as RSS (shared pages counted in each process) and as PSS (shared
pages split between the processes that map them: what the processes cost the machine). On a
shared machine the wall clock also measures the other processes; run it on an idle one for the
headline. The last line printed is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from _process import measure

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS, ROUNDS, STEPS, SEED = 3, 3, 100, 0
FLB = str(Path(sys.executable).with_name("flb"))


def plain_loop(cache: Path) -> None:
    """The same training and evaluation calls as `flb simulate`, nothing else."""
    import numpy as np
    import torch

    from flb_dapp.evaluation.task import make_task
    from flb_dapp.lora.adapter import Adapter
    from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator, train_config
    from flb_dapp.training.trainer import train_client

    torch.set_num_threads(1)
    spec = TaskSpec(model="tiny", task_seed=SEED, lora_seed=SEED, steps=STEPS)
    shares = make_task(seed=SEED).split_non_iid(CLIENTS, seed=SEED)
    evaluator = make_evaluator(spec, cache)
    base = initial_adapter(spec, cache)

    def fedavg(updates: list[Adapter]) -> Adapter:
        """The sample-weighted mean of the deltas, added to the round's global adapter."""
        weights = np.array([u.metadata.num_samples for u in updates], dtype=np.float64)
        weights /= weights.sum()
        tensors = {}
        for key, value in base.tensors.items():
            delta = sum(w * (u.tensors[key] - value) for w, u in zip(weights, updates, strict=True))
            tensors[key] = (value + delta).astype(np.float32)
        return Adapter(tensors, base.metadata, {})

    for round_number in range(1, ROUNDS + 1):
        updates = []
        for index, share in enumerate(shares):
            seed = SEED * 1000 + round_number * 100 + index
            config = train_config(spec, cache, seed=seed, device="cpu", num_threads=1)
            updates.append(train_client(config, share, base, client=f"c{index}", round=round_number).adapter)
        evaluator.evaluate(base)
        new_global = fedavg(updates)
        evaluator.evaluate(new_global)
        for left_out in range(CLIENTS):
            evaluator.evaluate(fedavg([u for i, u in enumerate(updates) if i != left_out]))
        base = new_global


def flb_command(out: Path, workers: int) -> list[str]:
    return [
        FLB, "simulate", "--clients", str(CLIENTS), "--rounds", str(ROUNDS), "--steps", str(STEPS),
        "--seed", str(SEED), "--workers", str(workers), "--out", str(out),
    ]  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--plain-loop"]:
        plain_loop(Path(sys.argv[2]))
        return
    cores = len(os.sched_getaffinity(0))  # the cores this run may use (taskset limits them)
    with tempfile.TemporaryDirectory(prefix="flb-bench-simulate-") as tmp:
        folder = Path(tmp)
        results = {
            "plain_loop": measure([sys.executable, __file__, "--plain-loop", str(folder / "plain")]),
            "flb_sequential": measure(flb_command(folder / "sequential", 1)),
            "flb_parallel": measure(flb_command(folder / "parallel", cores)),
        }
        same = [
            [
                r["global_model_cid"]
                for r in json.loads((folder / name / "summary.json").read_text())["rounds"]
            ]
            for name in ("sequential", "parallel")
        ]
    for name, figures in results.items():
        print(f"{name:15s} {figures['seconds']:7.2f} s  peak RSS {figures['peak_rss_mb']:5d} MB  "
              f"PSS {figures['peak_pss_mb']:5d} MB")  # fmt: skip
    plain = results["plain_loop"]["seconds"]
    summary = {
        "task": f"{CLIENTS} clients x {ROUNDS} rounds x {STEPS} steps, tiny model",
        "cores": cores,
        **{f"{name}_{key}": value for name, figures in results.items() for key, value in figures.items()},
        "flb_sequential_vs_plain_loop": round(results["flb_sequential"]["seconds"] / plain, 3),
        "flb_parallel_vs_plain_loop": round(results["flb_parallel"]["seconds"] / plain, 3),
        "parallel_speedup": round(
            results["flb_sequential"]["seconds"] / results["flb_parallel"]["seconds"], 3
        ),
        "parallel_same_global_cids": same[0] == same[1],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
