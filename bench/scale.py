"""Benchmark: rounds with 10, 100 and 1,000 registered clients and cohorts of 10, 20 and 50.

Run from the repo root: ``.venv/bin/python bench/scale.py [--chain anvil|embedded] [--steps N]``.
Each size is one `flb simulate` run as users type it (a subprocess on a fresh anvil node by
default, or Ape's embedded py-evm chain; the local store, the oracle, claims), on the bundled task
with ``--per-client 16`` questions each (skew 0.8), the tiny model, ``--steps`` local steps
(default 100, the bench/simulate.py figure; 20 in the first measurements), ``ROUNDS`` rounds, the
clients and the oracle's evaluations on a pool of one worker per core.

Why anvil: a node answers a contract read in about a millisecond; py-evm, a Python EVM, takes
about 25 ms a read and 40 ms a transaction, so on the embedded chain the bench mostly measures
py-evm (the first figures: 55 % of a 100-client round outside training, half of it Ape on py-evm).
From its summary.json, per round: the wall seconds spent training
the cohort (``train``: the engine's train call, clients in parallel on every core) and in
everything else: storing, committing and revealing the updates (``submit``), the oracle's sync
(event reads), fetch, validate, aggregate, evaluate, score and finalize, and the clients'
claims. Round 1 also pays the oracle's first read of the whole registration history and the
model's first load, so the figures that say how a round costs are the later rounds' means.
"Setup" is the rest of the wall time: start-up, deployment and the N registrations.

Peak memory is the process tree's (bench/_process.py). The last line is one JSON object. It runs
for about 15 minutes on 2 cores, past the usual 5: the 1,000 registrations alone (a funding
transfer and a `register` transaction each on the embedded chain) take about 6.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _process import measure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flb_dapp.devnet import free_port, port_open, wait_until
from flb_dapp.node_tools import anvil_command

SIZES = [(10, 10), (100, 20), (1000, 50)]  # (registered clients, cohort)
ROUNDS, PER_CLIENT, SEED = 2, 16, 0
FLB = str(Path(sys.executable).with_name("flb"))
OTHER = ("submit", "oracle_total", "claims")
EMBEDDED = "ethereum:local:test"


@contextmanager
def chain_node(kind: str) -> Iterator[str]:
    """A fresh chain for one run: an anvil node on a free port (its URI), or the embedded chain."""
    if kind == "embedded":
        yield EMBEDDED
        return
    port = free_port()
    node = subprocess.Popen(
        [*anvil_command(port), "--silent"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: port_open(port), "anvil", 20, node)
        yield f"http://127.0.0.1:{port}"
    finally:
        node.terminate()
        node.wait(timeout=10)


def run(clients: int, cohort: int, out: Path, network: str, steps: int) -> dict[str, float | int]:
    command = [
        FLB, "simulate", "--clients", str(clients), "--cohort", str(cohort), "--rounds", str(ROUNDS),
        "--steps", str(steps), "--per-client", str(PER_CLIENT), "--seed", str(SEED), "--out", str(out),
        "--network", network,
    ]  # fmt: skip
    process = measure(command)
    summary = json.loads((out / "summary.json").read_text())
    timings, rounds = summary["timings"], summary["rounds"]
    later = timings[1:] or timings

    def mean(key: str, rows: list[dict[str, float]]) -> float:
        return sum(r.get(key, 0.0) for r in rows) / len(rows)

    train = mean("train", later)
    other = sum(mean(k, later) for k in OTHER)
    steps = {k.removeprefix("oracle_"): round(mean(k, later), 3) for k in later[0] if k.startswith("oracle_")}
    spent = sum(t["train"] + sum(t.get(k, 0.0) for k in OTHER) for t in timings)
    return {
        "clients": clients,
        "cohort": cohort,
        "train_s": round(train, 2),
        "other_s": round(other, 2),
        "other_share": round(other / (train + other), 3),
        "other_per_member_s": round(other / cohort, 3),
        "submit_s": round(mean("submit", later), 2),
        "claims_s": round(mean("claims", later), 2),
        "oracle_steps_s": steps,
        "round1_other_s": round(sum(timings[0].get(k, 0.0) for k in OTHER), 2),
        "finalize_gas": [r["finalize_gas"] for r in rounds],
        "paid_per_round": [sum(int(v) > 0 for v in r["rewards"].values()) for r in rounds],
        "setup_s": round(process["seconds"] - spent, 1),
        "wall_s": process["seconds"],
        "peak_pss_mb": process["peak_pss_mb"],
        "peak_rss_mb": process["peak_rss_mb"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", choices=("anvil", "embedded"), default="anvil")
    parser.add_argument("--steps", type=int, default=100, help="local steps per client per round")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="flb-bench-scale-") as tmp:
        for clients, cohort in SIZES:
            with chain_node(args.chain) as network:
                row = run(clients, cohort, Path(tmp) / f"n{clients}", network, args.steps)
            results.append(row)
            print(
                f"{clients:5d} clients, cohort {cohort:3d}: train {row['train_s']:6.2f} s, other "
                f"{row['other_s']:6.2f} s ({row['other_share']:.0%}, {row['other_per_member_s']:.3f} s a "
                f"member), setup {row['setup_s']:6.1f} s, finalize gas {row['finalize_gas']}, "
                f"PSS {row['peak_pss_mb']} MB",
                flush=True,
            )
    at_100 = next(r for r in results if r["clients"] == 100)
    gas = [g for r in results for g in r["finalize_gas"][1:]]
    print(
        json.dumps(
            {
                "task": f"bundled, tiny, {args.steps} steps, {PER_CLIENT} questions a client, "
                f"{ROUNDS} rounds",
                "chain": args.chain,
                "cores": len(os.sched_getaffinity(0)),
                "sizes": results,
                "other_share_at_100": at_100["other_share"],
                "other_per_member_s": [r["other_per_member_s"] for r in results],
                "finalize_gas_min_max": [min(gas), max(gas)],
                "peak_pss_mb_max": max(r["peak_pss_mb"] for r in results),
            }
        )
    )


if __name__ == "__main__":
    main()
