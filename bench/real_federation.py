"""Benchmark: the real federated task against its clients alone and against pooled training.

Run from the repo root: ``.venv/bin/python bench/real_federation.py [--clients 3 --rounds 3 ...]``.
The real task (:mod:`flb_dapp.evaluation.real_task`): SmolLM2-135M-Instruct, client ``i`` holds
``--per-client`` questions of one real source (0 SciQ, 1 OpenBookQA, 2 CommonsenseQA, 3 MMLU STEM),
everyone trains and is scored in the cloze formulation, plain text. These models, one held-out set:

* base: the base model (the round-0 global adapter: B = 0);
* federation: ``--rounds`` rounds of the real loop (``run_simulation``: Ape's embedded chain, the
  store, commit/reveal, the oracle pipeline with FedAvg and leave-one-out rewards, claims), each
  client ``--steps`` steps a round from the global adapter;
* alone: each client by itself, the same rounds with the same seeds, from its own previous adapter
  (a federation of one: ``rounds x steps`` steps on its own share);
* pooled: one trainer on every share together, from the base model, the same rounds; three
  schedules (:data:`POOLED`): ``pooled_same_steps`` the steps of one client alone (the target's
  baseline), ``pooled`` as many steps as all clients together, ``pooled_large_batch`` the
  federation's number of steps with every client's batch together.

The held-out set is ``--n-eval`` questions of ARC-Easy + ARC-Challenge test (a seeded sample, none
of the oracle's per-round questions among them; all the others when ``--n-eval`` is larger: 3,508
of the 3,548 with ``--eval-limit 40``), scored once per model: ``acc`` and ``acc_norm`` (per
character; the headline, ``--metric``) with their standard errors (sqrt(p(1-p)/(n-1)), as
harnesses report). No source is ARC: the federation is measured on data nobody trained on.

Time: on 2 shared CPU cores the federation runs in this process while one worker process trains
the alone and pooled baselines, then two workers score the models (``--workers 1``: everything in
this process, one after the other). One torch thread per process: on 2 busy cores a second thread
costs far more than it gains. The models are saved in the run's folder and each model's scores
beside them; ``--rescore FOLDER`` scores them again, trains any baseline the folder lacks and
reuses the scores it already has for the same model bytes and questions. The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.real_task import client_names, pooled
from flb_dapp.evaluation.results import binomial_stderr
from flb_dapp.lora.codec import decode_adapter, encode_adapter
from flb_dapp.taskspec import TaskSpec


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="local steps per client per round")
    parser.add_argument("--per-client", type=int, default=256)
    parser.add_argument("--eval-limit", type=int, default=40, help="ARC questions the oracle scores")
    parser.add_argument("--n-eval", type=int, default=300, help="held-out ARC questions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the FLB model cache")
    parser.add_argument(
        "--metric",
        choices=("acc_norm", "acc"),
        default="acc_norm",
        help="the headline metric (both are printed): acc_norm is ARC's on the model card",
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        default=None,
        help="score the models an earlier run saved in this folder (no training)",
    )
    return parser.parse_args()


# --- work that runs in worker processes (plain arguments in, bytes / dicts out) ------------------
def _setup() -> None:
    import torch

    torch.set_num_threads(1)


def train_rounds(
    spec_dict: dict[str, Any],
    cache: str,
    share: list[MCQuestion],
    rounds: int,
    steps: int,
    batch_size: int,
    index: int,
    seed: int,
) -> bytes:
    """``rounds`` rounds of ``steps`` steps of ``batch_size`` questions, each from the previous
    round's adapter, with the seeds a federation client ``index`` uses: the client without the
    others."""
    from flb_dapp.taskspec import initial_adapter, train_config
    from flb_dapp.training.trainer import train_client

    _setup()
    spec = TaskSpec.from_dict(spec_dict)
    adapter = initial_adapter(spec, cache)
    for round_number in range(1, rounds + 1):
        config = train_config(
            spec, cache, steps=steps, batch_size=batch_size, seed=seed * 1000 + round_number * 100 + index
        )
        adapter = train_client(config, share, adapter, round=round_number).adapter
    return encode_adapter(adapter)


def score(
    spec_dict: dict[str, Any], cache: str, questions: list[MCQuestion], models: dict[str, bytes | None]
) -> dict[str, Any]:
    """acc / acc_norm and their standard errors of each adapter (None: the base model)."""
    from flb_dapp.evaluation.multiple_choice import Evaluator
    from flb_dapp.taskspec import model_path

    _setup()
    spec = TaskSpec.from_dict(spec_dict)
    evaluator = Evaluator(model_path(spec, cache), questions, formulation="cloze", chat=spec.eval_chat)
    out = {}
    for name, blob in models.items():
        result = evaluator.evaluate(None if blob is None else decode_adapter(blob))
        out[name] = {
            "acc": result.accuracy,
            "acc_stderr": result.stderr,
            "acc_norm": result.accuracy_norm,
            "acc_norm_stderr": result.stderr_norm,
            "correct": [p == q.answer for p, q in zip(result.predictions, questions, strict=True)],
            "correct_norm": [p == q.answer for p, q in zip(result.predictions_norm, questions, strict=True)],
        }
    return out


def paired_stderr(a: list[bool], b: list[bool]) -> float:
    """Standard error of acc(a) - acc(b) on the same questions: the sample standard deviation of
    the per-question differences over sqrt(n). Smaller than either accuracy's own standard error
    when the two models agree on most questions, which is why paired tests are the comparison."""
    import statistics

    diffs = [int(x) - int(y) for x, y in zip(a, b, strict=True)]
    return statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0


# --- the run ------------------------------------------------------------------------------------
def held_out(spec: TaskSpec, n: int) -> list[MCQuestion]:
    """``n`` ARC test questions (seeded), none of them among the oracle's per-round questions."""
    from flb_dapp.evaluation.benchmarks import sample_questions
    from flb_dapp.taskspec import evaluation_split, joined_benchmarks

    oracle_ids = {q.question_id for q in evaluation_split(spec)[0]}
    from flb_dapp.evaluation.benchmarks import load_benchmark

    rest = [
        q
        for name in joined_benchmarks(spec.data)
        for q in load_benchmark(name)
        if q.question_id not in oracle_ids
    ]
    return sample_questions(rest, n, seed=spec.task_seed + 1)


def run_federation(config: Any, task: Any) -> tuple[dict[str, Any], bytes]:
    """The real loop; returns its summary and the final global adapter's bytes (from the store)."""
    from flb_dapp.chain.network import connect
    from flb_dapp.cli.session import ape_logging
    from flb_dapp.cli.simulation import run_simulation
    from flb_dapp.storage.factory import open_store

    with ape_logging(False), connect(config.network):
        summary = run_simulation(config, task=task)
    store = open_store(str(config.out / "store"))
    return summary, store.get_bytes(summary["rounds"][-1]["global_model_cid"])


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    import torch

    from flb_dapp.cli.simulation import SimulationConfig, real_task
    from flb_dapp.taskspec import model_path
    from flb_dapp.training.models import default_cache_dir

    torch.set_num_threads(1)
    cache = Path(args.cache_dir or default_cache_dir())
    out = args.rescore or Path(tempfile.mkdtemp(prefix="flb-real-federation-"))
    config = SimulationConfig(
        clients=args.clients, rounds=args.rounds, model="smollm2", seed=args.seed, steps=args.steps,
        out=out, task="real", device=args.device, threads=1, eval_limit=args.eval_limit,
        per_client=args.per_client, cache_dir=cache,
    )  # fmt: skip
    task = real_task(config)
    spec, names = task.spec, client_names(args.clients)
    model_path(spec, cache)  # convert SmolLM2 once, before any worker needs it
    questions = held_out(spec, args.n_eval)
    jobs = baseline_jobs(args, spec, task.shares)
    if args.rescore is not None:  # the models of an earlier run, scored again (say, on more questions)
        adapters, summary, fed_seconds = load_models(out, names)
    else:
        adapters, summary, fed_seconds = train_federation(config, task, jobs, args, spec, cache)
        save_models(out, adapters, summary, fed_seconds)
    with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
        # baselines an older run did not train are trained while the others are scored
        missing = {name: job for name, job in jobs.items() if name not in adapters}
        pending = submit_baselines(pool, missing, args, spec, cache)
        folder = out / "models" / "scores"
        scores, trained = score_all(pool, folder, adapters, pending, questions, spec, cache)
    if trained:
        save_models(out, {**adapters, **trained}, summary, fed_seconds)
    print(f"models in {out} (--rescore {out} scores them again)", file=sys.stderr)
    order = ["base", *names, "federation", *POOLED]
    print(json.dumps({"rounds_summary": summary["rounds"], "scores": scores}, default=str), file=sys.stderr)
    result = figures(args, spec, summary, scores, names, order, len(questions), fed_seconds)
    result["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(result))


# The centralised baselines: one trainer on every share together, from the base model, the same
# rounds with the same seeds. name -> whether (steps a round, questions a step) are one client's
# ``--steps`` and batch size times the number of clients. They differ in how they match the
# federation:
POOLED: dict[str, tuple[bool, bool]] = {
    # as many question-steps as all clients together (clients x steps steps of the clients' batch)
    "pooled": (True, False),
    # as many question-steps and as many optimizer steps as the global model gets, each step every
    # client's batch together: what FedAvg of equal shares approximates for small updates
    "pooled_large_batch": (False, True),
    # the steps of one client alone (the "same steps"): a third of the question-steps
    "pooled_same_steps": (False, False),
}
# The pooled trainer the issue's target names: "the same steps trained (a) by each client alone and
# (b) on all data pooled". The target: the federation beats the best client alone by more than 2
# standard errors and is within 2 standard errors of this one (each model's own binomial stderr).
TARGET_POOLED = "pooled_same_steps"


def pooled_schedule(name: str, args: argparse.Namespace, spec: TaskSpec) -> tuple[int, int]:
    """Baseline ``name``'s steps a round and batch size."""
    more_steps, larger_batch = POOLED[name]
    return (
        args.steps * (args.clients if more_steps else 1),
        spec.batch_size * (args.clients if larger_batch else 1),
    )


Job = tuple[list[MCQuestion], int, int, int]  # data, steps a round, batch size, seed index


def baseline_jobs(args: argparse.Namespace, spec: TaskSpec, shares: list[list[MCQuestion]]) -> dict[str, Job]:
    """Each baseline's training: every client alone, then the pooled trainers (:data:`POOLED`)."""
    names, batch = client_names(args.clients), spec.batch_size
    jobs: dict[str, Job] = {
        name: (share, args.steps, batch, i) for i, (name, share) in enumerate(zip(names, shares, strict=True))
    }
    for name in POOLED:
        jobs[name] = (pooled(shares), *pooled_schedule(name, args, spec), 0)
    return jobs


def submit_baselines(
    pool: ProcessPoolExecutor, jobs: dict[str, Job], args: argparse.Namespace, spec: TaskSpec, cache: Path
) -> dict[str, Future[bytes]]:
    return {
        name: pool.submit(
            train_rounds, spec.to_dict(), str(cache), data, args.rounds, steps, batch, index, args.seed
        )
        for name, (data, steps, batch, index) in jobs.items()
    }


def train_federation(
    config: Any, task: Any, jobs: dict[str, Job], args: argparse.Namespace, spec: TaskSpec, cache: Path
) -> tuple[dict[str, bytes | None], dict[str, Any], float]:
    """The federation in this process while ``--workers - 1`` workers train the baselines; returns
    every model's adapter (None: the base model), the federation's summary and its time."""
    with ProcessPoolExecutor(max(1, args.workers - 1), mp_context=mp.get_context("spawn")) as pool:
        futures = submit_baselines(pool, jobs, args, spec, cache)
        fed_started = time.perf_counter()
        summary, federation = run_federation(config, task)
        fed_seconds = time.perf_counter() - fed_started
        adapters: dict[str, bytes | None] = {"base": None, "federation": federation}
        adapters.update({name: future.result() for name, future in futures.items()})
    return adapters, summary, fed_seconds


def score_all(
    pool: ProcessPoolExecutor,
    folder: Path,
    adapters: dict[str, bytes | None],
    pending: dict[str, Future[bytes]],
    questions: list[MCQuestion],
    spec: TaskSpec,
    cache: Path,
) -> tuple[dict[str, Any], dict[str, bytes | None]]:
    """Every model's scores, one pool task a model: the trained ones first, each pending one as its
    training ends; returns the scores and the pending models' bytes. Scoring is deterministic, so a
    model's scores on the same questions are kept in ``folder`` under the digests of its bytes and
    of the question ids, and a rerun (``--rescore`` with one more baseline, say) scores only what
    is new."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = "\n".join(str(q.question_id) for q in questions)
    question_digest = hashlib.sha256(ids.encode()).hexdigest()[:16]
    paths: dict[str, Path] = {}
    futures: dict[str, Future[dict[str, Any]]] = {}

    def submit(name: str, blob: bytes | None) -> None:
        model_digest = hashlib.sha256(blob or b"base").hexdigest()[:16]
        paths[name] = folder / f"{name}-{model_digest}-{question_digest}.json"
        if not paths[name].exists():
            futures[name] = pool.submit(score, spec.to_dict(), str(cache), questions, {name: blob})

    for name, blob in adapters.items():
        submit(name, blob)
    trained: dict[str, bytes | None] = {}
    for name, training in pending.items():
        trained[name] = training.result()
        submit(name, trained[name])
    for name, future in futures.items():
        paths[name].write_text(json.dumps(future.result()[name]))
    scores = {name: json.loads(path.read_text()) for name, path in paths.items()}
    return scores, trained


def save_models(
    out: Path, adapters: dict[str, bytes | None], summary: dict[str, Any], fed_seconds: float
) -> None:
    folder = out / "models"
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in adapters.items():
        if blob is not None:
            (folder / f"{name}.safetensors").write_bytes(blob)
    (folder / "run.json").write_text(json.dumps({"summary": summary, "federation_s": fed_seconds}))


def load_models(out: Path, names: list[str]) -> tuple[dict[str, bytes | None], dict[str, Any], float]:
    """The models an earlier run saved; a baseline it did not train (an older run) is left out, for
    the caller to train."""
    folder = out / "models"
    run = json.loads((folder / "run.json").read_text())
    adapters: dict[str, bytes | None] = {"base": None}
    for name in [*names, "federation", *POOLED]:
        if (folder / f"{name}.safetensors").exists():
            adapters[name] = (folder / f"{name}.safetensors").read_bytes()
    return adapters, run["summary"], float(run["federation_s"])


def figures(
    args: argparse.Namespace,
    spec: TaskSpec,
    summary: dict[str, Any],
    scores: dict[str, Any],
    names: list[str],
    order: list[str],
    n_eval: int,
    fed_seconds: float,
) -> dict[str, Any]:
    """The last line's figures: each model's accuracy and the differences in standard errors, for
    the headline metric (``--metric``) at the top level and for both metrics under ``by_metric``."""
    by_metric = {metric: comparison(scores, names, order, metric) for metric in METRICS}
    result = {"metric": args.metric, **by_metric[args.metric], "by_metric": by_metric}
    result.update(
        {
            "oracle_accuracy": [summary["initial_accuracy"]] + [r["accuracy"] for r in summary["rounds"]],
            "accepted": [r["accepted"] for r in summary["rounds"]],
            "claimed": summary["claimed"],
            "n_eval": n_eval,
            "eval": "arc-easy+arc-challenge test, cloze, plain text (no chat template)",
            "oracle_eval_limit": args.eval_limit,
            "rounds": args.rounds,
            "clients": args.clients,
            "sources": names,
            "per_client": args.per_client,
            "steps": args.steps,
            "steps_alone": args.rounds * args.steps,
            "batch_size": spec.batch_size,
            # each pooled trainer's [steps in all, batch size]
            "pooled_schedule": {
                name: [args.rounds * steps, batch]
                for name, (steps, batch) in ((n, pooled_schedule(n, args, spec)) for n in POOLED)
            },
            "learning_rate": spec.learning_rate,
            "federation_wall_s": round(fed_seconds, 1),
        }
    )
    return result


METRICS = {"acc": ("acc", "correct"), "acc_norm": ("acc_norm", "correct_norm")}


def comparison(scores: dict[str, Any], names: list[str], order: list[str], metric: str) -> dict[str, Any]:
    """Each model's ``metric``, the best client alone, and the federation's differences from it and
    from each pooled trainer, over the standard error and over the paired standard error of the
    difference (same questions)."""
    key, correct = METRICS[metric]
    stderr = {name: binomial_stderr(scores[name][key], len(scores[name][correct])) for name in order}
    best = max(names, key=lambda n: scores[n][key])
    fed = scores["federation"]

    def paired(a: str, b: str) -> float:
        spread = paired_stderr(scores[a][correct], scores[b][correct])
        return (scores[a][key] - scores[b][key]) / max(spread, 1e-12)

    result = {
        "base": scores["base"][key],
        "alone": {name: scores[name][key] for name in names},
        "best_alone": scores[best][key],
        "best_alone_client": best,
        "federation": fed[key],
        **{name: scores[name][key] for name in POOLED},
        "stderr": stderr,
        "federation_minus_best_alone_in_stderr": (fed[key] - scores[best][key]) / stderr[best],
        "federation_minus_best_alone_in_paired_stderr": paired("federation", best),
    }
    for name in POOLED:
        result[f"{name}_minus_federation_in_stderr"] = (scores[name][key] - fed[key]) / stderr["federation"]
        result[f"{name}_minus_federation_in_paired_stderr"] = paired(name, "federation")
    beats = result["federation_minus_best_alone_in_stderr"] > 2
    within = abs(result[f"{TARGET_POOLED}_minus_federation_in_stderr"]) <= 2
    result["target"] = {
        "pooled": TARGET_POOLED,
        "federation_beats_best_alone_by_2_stderr": beats,
        "federation_within_2_stderr_of_pooled": within,
        "met": beats and within,
    }
    return result


if __name__ == "__main__":
    main()
