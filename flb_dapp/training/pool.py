"""Clients' local training (and the oracle's evaluations) as plain-data jobs, run in process or in
warm worker processes.

A :class:`TrainJob` holds only plain data (the TaskSpec as a dict, the client's questions as
records, the global adapter's bytes, the seed, device and quantization); :func:`run_train_job`
turns it into the encoded trained adapter. The same function runs in process (``workers=1``), in a
:class:`TrainingPool` of spawned processes, or on Ray, so every engine gives the same bytes for a
job: training is seeded by the job and runs on ``num_threads`` torch threads wherever it runs.

This module belongs to the pure layers: it imports no chain code, so spawned workers never load
Ape. Heavy libraries are imported inside the functions (workers import them once, when warming).

With a pool, the caller's process never loads the model: :func:`evaluate_adapters` keeps one
evaluator warm in each worker (the oracle's coalitions are evaluated on every core at once), and
:func:`initial_adapter_file` builds the round-0 adapter there.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

from flb_dapp.evaluation.datasets import MCQuestion, question_from_record
from flb_dapp.lora.codec import decode_adapter, encode_adapter
from flb_dapp.taskspec import TaskSpec, train_config

# NOTE: one thread per worker: the tiny model trains several times faster on one thread than on
# two busy cores, and a fixed count is what makes a job's result independent of where it runs.
WORKER_THREADS = 1
R = TypeVar("R")
# What every worker needs, imported once by the fork server (its workers are forked from it).
WARM_MODULES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "flb_dapp.training.trainer",
    __name__,
    "flb_dapp.training.fork_ready",  # last: freezes what the others built (shared pages stay shared)
)


@dataclass(frozen=True)
class TrainJob:
    """One client's training in one round, as plain data (picklable, no live objects)."""

    spec: dict[str, Any]  # TaskSpec.to_dict()
    cache_dir: str  # where the base model is built / converted
    share: tuple[dict[str, Any], ...]  # the client's questions, as MCQuestion records
    global_adapter: bytes  # the round's global adapter file
    seed: int
    client: str
    round: int
    device: str = "cpu"
    quantization: str | None = None
    num_threads: int | None = WORKER_THREADS

    @classmethod
    def make(
        cls, spec: TaskSpec, share: Sequence[MCQuestion], global_adapter: bytes, **fields: Any
    ) -> TrainJob:
        return cls(
            spec=spec.to_dict(),
            share=tuple(q.to_record() for q in share),
            global_adapter=global_adapter,
            **fields,
        )


def run_train_job(job: TrainJob) -> bytes:
    """Train as ``job`` says and return the encoded adapter (deterministic for the job)."""
    from flb_dapp.training.trainer import train_client

    config = train_config(
        TaskSpec.from_dict(job.spec),
        job.cache_dir,
        seed=job.seed,
        device=job.device,
        quantization=job.quantization,
        num_threads=job.num_threads,
    )
    questions = [question_from_record(r, where=f"share of {job.client}") for r in job.share]
    base = decode_adapter(job.global_adapter)
    result = train_client(config, questions, base, client=job.client, round=job.round)
    return encode_adapter(result.adapter)


# One evaluator per worker and task, built on the worker's first evaluation and kept for the next.
_EVALUATORS: dict[tuple[str, str, str, str], Any] = {}


def evaluate_adapters(
    spec: dict[str, Any],
    cache_dir: str,
    device: str,
    dtype: str,
    threads: int | None,
    adapters: Sequence[Any],
) -> list[Any]:
    """The task's evaluation of each adapter (an ``Adapter``, or None for the base model), on
    ``threads`` torch threads (the worker's own count is restored after, for its training jobs)."""
    import torch

    from flb_dapp.taskspec import make_evaluator

    key = (json.dumps(spec, sort_keys=True), cache_dir, device, dtype)
    evaluator = _EVALUATORS.get(key)
    if evaluator is None:
        evaluator = make_evaluator(TaskSpec.from_dict(spec), cache_dir, device=device, dtype=dtype)
        _EVALUATORS[key] = evaluator
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return [evaluator.evaluate(adapter) for adapter in adapters]
    finally:
        torch.set_num_threads(previous)


def initial_adapter_file(spec: dict[str, Any], cache_dir: str) -> bytes:
    """The encoded round-0 adapter of the task (its base model built into ``cache_dir`` once)."""
    from flb_dapp.taskspec import initial_adapter

    return encode_adapter(initial_adapter(TaskSpec.from_dict(spec), cache_dir))


def warm_worker() -> None:
    """Set a worker up once: one torch thread, and the training stack imported now (seconds), so
    that each round costs training only."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(WORKER_THREADS)
    # trl's names load lazily: asking for them is what imports the trainer (and datasets, peft).
    from trl import SFTConfig, SFTTrainer  # noqa: F401

    import flb_dapp.training.trainer  # noqa: F401


def _ready() -> int:
    return os.getpid()


class TrainingPool:
    """``workers`` spawned processes that train jobs; started once (warming while the caller does
    other work) and reused for every round. ``train`` returns the adapters in job order."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        # NOTE: a fork server, not fork: a forked caller would hand its threads and its loaded chain
        # stack to the workers. The fork server is a fresh interpreter that imports the training
        # stack once (WARM_MODULES) and forks each worker from that state, so N workers cost one
        # import, not N. OMP_NUM_THREADS is inherited and read when torch loads: one thread.
        previous = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(WORKER_THREADS)
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(WARM_MODULES))
            self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=warm_worker)
            # One call per worker starts them all now (the executor spawns lazily, one per call).
            self._warming: list[Future[int]] = [self._executor.submit(_ready) for _ in range(workers)]
        finally:
            if previous is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = previous

    def train(self, jobs: Sequence[TrainJob]) -> list[bytes]:
        return list(self._executor.map(run_train_job, jobs))

    def call(self, function: Callable[..., R], *args: Any) -> R:
        """``function(*args)`` on one warm worker (a picklable, module-level function)."""
        return self._executor.submit(function, *args).result()

    def map(self, function: Callable[..., R], *iterables: Any) -> list[R]:
        """``function`` over the arguments on every worker at once; results in argument order."""
        return list(self._executor.map(function, *iterables))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> TrainingPool:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class InProcessTrainer:
    """The ``workers=1`` engine: the same jobs, run one after another in this process."""

    workers = 1

    def train(self, jobs: Sequence[TrainJob]) -> list[bytes]:
        return [run_train_job(job) for job in jobs]

    def close(self) -> None:
        pass
