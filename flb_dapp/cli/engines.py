"""Where `flb simulate` runs the clients' training (and, on Ray, the oracle's evaluation).

Three engines run the same plain-data jobs (:mod:`flb_dapp.training.pool`) and so give the same
adapters for a seed: in process one after another (``workers=1``), a pool of warm worker processes
on this machine (``workers>1``), or Ray (``backend="ray"``: a local instance with one CPU per core,
or an existing cluster by ``address``). The chain, the store and the oracle stay in the caller's
process whatever the engine: engines only ever see plain data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from flb_dapp.exceptions import ConfigError
from flb_dapp.taskspec import TaskSpec, make_evaluator
from flb_dapp.training.pool import InProcessTrainer, TrainingPool, TrainJob

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


def open_scorer(
    engine: TrainingEngine, spec: TaskSpec, cache_dir: str | Path, device: str, threads: int | None
) -> Any:
    """The oracle's scorer: on a Ray actor for the Ray engine, else an Evaluator in this process."""
    from flb_dapp.cli.ray_backend import RayEngine

    if isinstance(engine, RayEngine):
        return engine.scorer(spec, cache_dir, device=device, threads=threads)
    return make_evaluator(spec, cache_dir, device=device)
