"""Benchmark: does a verifier on another machine reproduce the oracle's round?

Run from the repo root: ``.venv/bin/python bench/reexecution.py``. For two rounds, one on the tiny
model (bundled task, 4 clients x 20 steps, 200 held-out questions) and one on the real task
(SmolLM2-135M-Instruct, 3 clients with SciQ / OpenBookQA / CommonsenseQA, 2 steps, 20 ARC
questions, cloze), the oracle computes the round on Ape's embedded chain; then fresh processes
recompute it from the saved round inputs and the store with the round computation alone, under
1 and 2 torch threads and under ``ATEN_CPU_CAPABILITY=default`` (no AVX2/AVX-512 kernels) with 2
threads. For each: whether the result (global model CID, report CID, rewards root) is identical,
and whether it agrees to the declared precision (``oracle.score_tolerance``, oracle/precision.py),
which is what a verifier attests. The tiny round runs twice: with float32 scores (the default) and
with exact scores (``oracle.score_dtype: float64``, ``score_decimals: 8``: losses rounded before
contributions and rewards); the real round with exact scores. About 15 minutes on 2 busy cores
(the SmolLM2 recomputes). Last line: one JSON object.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EXACT = {"score_dtype": "float64", "score_decimals": 8}
ROUNDS = {
    "bundled": ("bundled", {}),
    "bundled, exact scores": ("bundled", EXACT),
    "real, exact scores": ("real", EXACT),
}
VARIANTS = {
    "1 thread": ({}, 1),
    "2 threads": ({}, 2),
    "default kernels, 2 threads": ({"ATEN_CPU_CAPABILITY": "default"}, 2),
}


def oracle_round(folder: Path, task: str, rules: dict[str, object]) -> dict[str, str]:
    """One round computed by the oracle; saves what a recompute needs in ``folder``."""
    from ape import accounts, networks

    from flb_dapp.audit import read_round_inputs
    from flb_dapp.cli.simulation import SimulationConfig, build_task
    from flb_dapp.federation import FederationPlan, build_federation
    from flb_dapp.taskspec import make_evaluator
    from oracle.pipeline import Oracle

    real = task == "real"
    config = SimulationConfig(
        clients=3 if real else 4, model="smollm2" if real else "tiny", task=task, steps=2 if real else 20,
        eval_limit=20 if real else None,
    )  # fmt: skip
    built = build_task(config)
    spec = built.spec if real else dataclasses.replace(built.spec, eval_limit=200)
    with networks.parse_network_choice("ethereum:local:test"):
        test = accounts.test_accounts
        plan = FederationPlan(spec=spec, account="test:1", oracle={"torch_threads": 1, **rules})
        clients = [test[2 + i] for i in range(len(built.shares))]
        federation = build_federation(
            folder, test[0], test[1], clients, built.shares, plan, cache_dir=folder / "cache"
        )
        federation.scorer = make_evaluator(
            spec, folder / "cache", dtype=str(rules.get("score_dtype", "float32"))
        )
        for index in range(len(clients)):
            federation.submit(index, federation.train(index))
        inputs = read_round_inputs(
            federation.coordinator, federation.store, 1, spec, start_block=federation.record.block
        )
        oracle = Oracle.for_federation(federation)
        [processed] = oracle.run_once()
        meta = {
            "inputs": inputs.to_json(),
            "settings": oracle.round_settings.describe(),
            "task": spec.to_dict(),
        }
        (folder / "round.json").write_text(json.dumps(meta))
        assert processed.outcome is not None
        (folder / "oracle-report.json").write_bytes(processed.outcome.report.to_json())
        return {
            "global": processed.global_model_cid,
            "report": processed.report_cid,
            "root": processed.rewards_root,
        }


def recompute(folder: Path, threads: int) -> dict[str, object]:
    """In a fresh process: the round from ``folder`` recomputed; its result and the verdict."""
    import torch

    torch.set_num_threads(threads)
    from flb_dapp.report import parse_report
    from flb_dapp.rounds import RoundComputation, RoundInputs, RoundSettings
    from flb_dapp.storage.factory import open_store
    from flb_dapp.taskspec import TaskSpec, make_evaluator
    from oracle.precision import disagreement

    meta = json.loads((folder / "round.json").read_text())
    inputs = RoundInputs.from_json(meta["inputs"])
    settings = RoundSettings.from_description(meta["settings"])
    run = RoundComputation(
        inputs,
        settings,
        open_store(str(folder / "store")),
        make_evaluator(TaskSpec.from_dict(meta["task"]), folder / "cache", dtype=settings.score_dtype),
    )
    outcome = run.run()
    theirs = parse_report((folder / "oracle-report.json").read_bytes())
    scored = dict(run.result("score").contributions)
    verdict = disagreement(
        outcome.report,
        scored,
        dict(inputs.previous_cumulative),
        theirs,
        (theirs.rewards.root, int(theirs.rewards.round_total)),
    )
    return {
        "global": outcome.global_model_cid,
        "report": outcome.report_cid,
        "root": outcome.rewards.tree.root_hex,
        "within_precision": verdict == "",
        "why": verdict,
    }


def main() -> None:
    if sys.argv[1:2] == ["--recompute"]:
        print(json.dumps(recompute(Path(sys.argv[2]), int(sys.argv[3]))))
        return
    results: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="flb-bench-reexecution-") as tmp:
        for label, (task, rules) in ROUNDS.items():
            folder = Path(tmp) / label.replace(", ", "-").replace(" ", "-")
            expected = oracle_round(folder, task, rules)
            for name, (env, threads) in VARIANTS.items():
                command = [sys.executable, __file__, "--recompute", str(folder), str(threads)]
                environment = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
                done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
                if done.returncode != 0:
                    raise SystemExit(done.stderr[-3000:])
                got = json.loads(done.stdout.strip().splitlines()[-1])
                exact = all(got[k] == expected[k] for k in ("global", "report", "root"))
                results[f"{label}: {name}"] = {"exact": exact, **got}
                verdict = f"within precision {got['within_precision']} {got['why']}"
                print(f"{label:22s} {name:28s} exact {exact!s:5s} {verdict}", flush=True)
    exact_scores = [r for key, r in results.items() if "exact scores" in key]
    summary = {
        "runs": results,
        "all_within_precision": all(r["within_precision"] for r in results.values()),
        "exact_scores_identical": all(r["exact"] for r in exact_scores),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
