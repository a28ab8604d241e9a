"""Clients trained in parallel give the same federation as clients trained one after another:
the same adapters (bytes) for a job wherever it runs, and the same global CIDs, report CIDs and
rewards for a seed whatever the engine (worker processes or Ray).

The module's top level imports only pure layers: a pool worker imports it to run
:func:`chain_modules_loaded`, and must not load the chain by doing so.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from flb_dapp.lora.codec import decode_adapter, encode_adapter
from flb_dapp.taskspec import TaskSpec, initial_adapter
from flb_dapp.training.pool import InProcessTrainer, TrainingPool, TrainJob

SPEC = TaskSpec(model="tiny", steps=3)


def chain_modules_loaded() -> list[str]:
    """The chain modules (Ape, FLB's chain SDK) loaded in the calling process."""
    return sorted(m for m in sys.modules if m in ("ape", "web3") or m.startswith(("ape.", "flb_dapp.chain")))


def jobs_for(cache: Path, count: int) -> list[TrainJob]:
    from flb_dapp.evaluation.task import make_task

    shares = make_task(seed=0).split_non_iid(count, seed=0)
    base = encode_adapter(initial_adapter(SPEC, cache))
    return [
        TrainJob.make(SPEC, share, base, cache_dir=str(cache), seed=100 + i, client=f"0x{i:040x}", round=1)
        for i, share in enumerate(shares)
    ]


@pytest.mark.slow
def test_a_pool_trains_the_same_bytes_as_this_process_and_never_loads_the_chain(tmp_path: Path) -> None:
    jobs = jobs_for(tmp_path / "cache", 3)
    sequential = InProcessTrainer().train(jobs)
    with TrainingPool(2) as pool:
        assert pool.call(chain_modules_loaded) == []
        parallel = pool.train(jobs)
        assert pool.call(chain_modules_loaded) == []  # training loaded no chain code either
    assert parallel == sequential
    adapters = [decode_adapter(data) for data in parallel]
    assert [(a.metadata.client, a.metadata.round) for a in adapters] == [(j.client, 1) for j in jobs]
    assert len(set(parallel)) == 3  # different shares and seeds: three different updates


def test_the_engine_options_are_checked_before_anything_is_deployed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from flb_dapp.cli.main import cli

    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(cli, ["simulate", "--out", str(out), "--address", "127.0.0.1:6379"])
    assert result.exit_code == 2 and "--backend ray" in result.output, result.output
    result = runner.invoke(cli, ["simulate", "--out", str(out), "--workers", "0"])
    assert result.exit_code == 2 and "--workers" in result.output, result.output
    assert not out.exists()


def federation_numbers(summary: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the engine: every round's CIDs and rewards, and what was claimed."""
    rounds = [
        (r["global_model_cid"], r["report_cid"], r["rewards"], r["accuracy"]) for r in summary["rounds"]
    ]
    return {"rounds": rounds, "claimed": summary["claimed"], "initial": summary["initial_accuracy"]}


def simulate_twice(tmp_path: Path, **engine: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same 2-round federation sequentially and on ``engine``, each from the same chain state
    (so the contracts get the same addresses)."""
    from ape import chain

    from flb_dapp.cli.simulation import SimulationConfig, run_simulation

    def config(name: str, **fields: Any) -> SimulationConfig:
        return SimulationConfig(
            clients=3, rounds=2, steps=5, malicious=1,
            out=tmp_path / name, cache_dir=tmp_path / "cache", **fields,
        )  # fmt: skip

    snapshot = chain.snapshot()
    sequential = run_simulation(config("sequential", workers=1))
    chain.restore(snapshot)
    other = run_simulation(config("engine", **engine))
    return sequential, other


@pytest.mark.slow
def test_two_workers_give_the_same_federation_as_one(tmp_path: Path, accounts: Any) -> None:
    sequential, parallel = simulate_twice(tmp_path, workers=2)
    assert federation_numbers(parallel) == federation_numbers(sequential)
    assert [r["accepted"] for r in sequential["rounds"]] == [3, 3]
    assert sum(sequential["claimed"].values()) > 0


@pytest.mark.slow
def test_the_ray_backend_gives_the_same_federation_as_one_process(tmp_path: Path, accounts: Any) -> None:
    import ray

    sequential, on_ray = simulate_twice(tmp_path, backend="ray", workers=2)
    assert federation_numbers(on_ray) == federation_numbers(sequential)
    assert not ray.is_initialized()  # the local instance was shut down with the simulation


MODEL_STACK = ("torch", "transformers", "peft", "trl")
LOADED_AFTER_A_PARALLEL_RUN = """
import sys
from pathlib import Path

from flb_dapp.chain.network import connect
from flb_dapp.cli.simulation import SimulationConfig, run_simulation

if __name__ == "__main__":
    with connect("ethereum:local:test"):
        summary = run_simulation(SimulationConfig(rounds=1, steps=3, workers=2, out=Path(sys.argv[1])))
    print(summary["rounds"][0]["accepted"], [m for m in {stack!r} if m in sys.modules])
"""


@pytest.mark.slow
def test_with_workers_the_simulating_process_never_loads_the_model_stack(tmp_path: Path) -> None:
    """The pool builds the initial adapter and evaluates for the oracle: the process that holds the
    chain, the store and the oracle imports neither torch nor transformers (its memory stays the
    chain's)."""
    import os
    import subprocess

    script = tmp_path / "run.py"
    script.write_text(LOADED_AFTER_A_PARALLEL_RUN.format(stack=MODEL_STACK))
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "3 []"
