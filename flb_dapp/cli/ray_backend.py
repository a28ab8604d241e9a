"""`flb simulate --backend ray`: clients' training as Ray tasks, the oracle's evaluation on a Ray
actor. Ray is the engine past one machine (as in Flower's simulation); the chain, the store and the
oracle stay in the driver process, so the rounds go through the contract exactly as without Ray.

Only plain data crosses to Ray (:class:`flb_dapp.training.pool.TrainJob` in, adapter bytes out; an
Adapter in, an EvalResult out), and this module imports nothing of the chain: Ray's workers import
it, and must not load Ape.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flb_dapp.lora.adapter import Adapter
from flb_dapp.taskspec import TaskSpec, make_evaluator
from flb_dapp.training.pool import TrainJob, run_train_job

# Short, under /tmp: Ray puts its sockets there, and a Unix socket path is at most 107 bytes.
RAY_TEMP_DIR = "/tmp/flb-ray"
# Adapters and results are small (kilobytes to megabytes); Ray's default reserves 30% of RAM.
OBJECT_STORE_BYTES = 256 * 1024**2


class EvaluatorHost:
    """The oracle's Evaluator, built once inside a Ray actor and kept there for every round."""

    def __init__(self, spec: dict[str, Any], cache_dir: str, device: str, threads: int | None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)  # what the driver's own evaluation would use
        self.evaluator = make_evaluator(TaskSpec.from_dict(spec), cache_dir, device=device)

    def evaluate(self, adapter: Adapter | None = None) -> Any:
        return self.evaluator.evaluate(adapter)


class RayScorer:
    """A scorer (``evaluate(adapter)``) whose work runs on the :class:`EvaluatorHost` actor."""

    def __init__(self, actor: Any) -> None:
        self._actor = actor

    def evaluate(self, adapter: Adapter | None = None) -> Any:
        import ray

        return ray.get(self._actor.evaluate.remote(adapter))


class RayEngine:
    """A Ray instance for one simulation: a local one with ``num_cpus`` CPUs (started here, shut
    down by :meth:`close`), or the cluster at ``address``."""

    def __init__(self, address: str | None, num_cpus: int) -> None:
        import ray

        self.workers = num_cpus
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        # Keep the GPUs the caller sees visible to workers that ask for none (Ray's coming default;
        # setting it also silences Ray's warning about the change).
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        common: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address is None:
            ray.init(
                num_cpus=num_cpus,
                _temp_dir=RAY_TEMP_DIR,
                object_store_memory=OBJECT_STORE_BYTES,
                **common,
            )
        else:
            ray.init(address=address, **common)
        # One CPU a training task: Ray then also sets OMP_NUM_THREADS=1 in the worker.
        self._train = ray.remote(num_cpus=1)(run_train_job)
        # NOTE: the evaluator holds no CPU between calls: the oracle evaluates only while no client
        # trains, so reserving a CPU for it would idle one core through every training phase.
        self._host = ray.remote(num_cpus=0)(EvaluatorHost)

    def train(self, jobs: Sequence[TrainJob]) -> list[bytes]:
        import ray

        results: list[bytes] = ray.get([self._train.remote(job) for job in jobs])
        return results

    def scorer(self, spec: TaskSpec, cache_dir: str | Path, *, device: str, threads: int | None) -> RayScorer:
        actor = self._host.remote(spec.to_dict(), str(cache_dir), device, threads)
        return RayScorer(actor)

    def close(self) -> None:
        import ray

        ray.shutdown()
