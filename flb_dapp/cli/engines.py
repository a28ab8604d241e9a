"""Where `flb simulate` runs the clients' training (and, on Ray, the oracle's evaluation).

Three engines run the same plain-data jobs (:mod:`flb_dapp.training.pool`) and so give the same
adapters for a seed: in process one after another (``workers=1``), a pool of warm worker processes
on this machine (``workers>1``), or Ray (``backend="ray"``: a local instance with one CPU per core,
or an existing cluster by ``address``). The chain, the store and the oracle stay in the caller's
process whatever the engine: engines only ever see plain data. With a pool or Ray, the oracle's
evaluations run there too (:func:`open_scorer`), so the caller never loads the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from flb_dapp.exceptions import ConfigError
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import decode_adapter
from flb_dapp.taskspec import TaskSpec, initial_adapter, make_evaluator
from flb_dapp.training.pool import (
    InProcessTrainer,
    TrainingPool,
    TrainJob,
    evaluate_adapters,
    initial_adapter_file,
)

BACKENDS = ("local", "ray")


class TrainingEngine(Protocol):
    workers: int

    def train(self, jobs: Sequence[TrainJob]) -> list[bytes]: ...

    def close(self) -> None: ...


def default_workers() -> int:
    return os.cpu_count() or 1


def open_engine(backend: str, workers: int, clients: int, address: str | None = None) -> TrainingEngine:
    """The engine for these settings, started now (pool workers warm up while the caller deploys).

    The local pool never holds more workers than there are clients to train at once."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if backend == "ray":
        from flb_dapp.cli.ray_backend import RayEngine

        return RayEngine(address=address, num_cpus=workers)
    if address is not None:
        raise ConfigError("--address names a Ray cluster: use it with --backend ray")
    size = min(workers, clients)
    return InProcessTrainer() if size == 1 else TrainingPool(size)


class PoolScorer:
    """The oracle's scorer on the training pool's workers: each keeps the task's evaluator warm,
    and :meth:`evaluate_many` spreads a batch (a round's coalitions) over all of them. A worker
    evaluates on ``threads`` torch threads, as this process would, so the losses are the same."""

    dtype = "float32"

    def __init__(
        self, pool: TrainingPool, spec: TaskSpec, cache_dir: str | Path, device: str, threads: int | None
    ) -> None:
        self._pool = pool
        self._task = (spec.to_dict(), str(cache_dir), device, self.dtype, threads)
        self.parallelism = pool.workers

    def evaluate(self, adapter: Adapter | None = None) -> Any:
        return self._pool.call(evaluate_adapters, *self._task, [adapter])[0]

    def evaluate_many(self, adapters: Sequence[Adapter | None]) -> list[Any]:
        """The adapters' evaluations in order, in one contiguous slice per worker."""
        count = min(self.parallelism, len(adapters))
        if count == 0:
            return []
        size = -(-len(adapters) // count)
        chunks = [list(adapters[i : i + size]) for i in range(0, len(adapters), size)]
        parts = self._pool.map(partial(evaluate_adapters, *self._task), chunks)
        return [result for part in parts for result in part]


def open_scorer(
    engine: TrainingEngine, spec: TaskSpec, cache_dir: str | Path, device: str, threads: int | None
) -> Any:
    """The oracle's scorer: on a Ray actor for the Ray engine, on the workers of a pool, else an
    Evaluator in this process."""
    from flb_dapp.cli.ray_backend import RayEngine

    if isinstance(engine, RayEngine):
        return engine.scorer(spec, cache_dir, device=device, threads=threads)
    if isinstance(engine, TrainingPool):
        return PoolScorer(engine, spec, cache_dir, device, threads)
    return make_evaluator(spec, cache_dir, device=device)


def build_initial_adapter(engine: TrainingEngine, spec: TaskSpec, cache_dir: str | Path) -> Adapter:
    """The round-0 adapter, built on a pool worker when there is a pool (this process then never
    loads the model), else here."""
    if isinstance(engine, TrainingPool):
        return decode_adapter(engine.call(initial_adapter_file, spec.to_dict(), str(cache_dir)))
    return initial_adapter(spec, cache_dir)
