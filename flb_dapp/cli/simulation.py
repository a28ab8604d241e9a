"""`flb simulate`: a whole federation in one process on the embedded defaults (top floor: it runs
the oracle service in process, so it lives beside the commands, above the library).

Ape's embedded chain, the local content-addressed store and a task (a :class:`SimulationTask`: the
TaskSpec and each client's share): the contracts are deployed, N clients register, and for R rounds
each client of the round's cohort pulls the global adapter by CID, trains on its own share, stores
its adapter and submits the CID; the oracle pipeline aggregates, evaluates, rewards and finalizes;
every client claims. The same SDK, store, training and oracle code as the real services, with no
shortcut around the contract or the store. Where the clients train is the engine's
(:mod:`flb_dapp.cli.engines`: in process, warm worker processes, or Ray); it sees plain data only,
and every engine gives the same adapters, CIDs and rewards for a seed.

Tasks: ``bundled`` (the synthetic task split non-IID by answer letter, any model) and ``real``
(:mod:`flb_dapp.evaluation.real_task`: each client holds a different real benchmark's questions,
the oracle scores held-out ARC in the cloze formulation).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flb_dapp.aggregation.registry import DEFAULT_STRATEGY
from flb_dapp.atomic import atomic_write_text
from flb_dapp.chain.deployment import TOKEN_DECIMALS
from flb_dapp.cli.engines import TrainingEngine, build_initial_adapter, open_engine, open_scorer
from flb_dapp.cli.simulation_output import plot_summary, write_report
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.task import make_task, make_task_for
from flb_dapp.exceptions import ConfigError, TrainingError
from flb_dapp.federation import Federation, FederationPlan, build_federation
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import decode_adapter, encode_adapter
from flb_dapp.report import RoundReport
from flb_dapp.rounds.settings import RoundRules
from flb_dapp.taskspec import TaskSpec
from flb_dapp.training.pool import InProcessTrainer, TrainJob

if TYPE_CHECKING:
    from oracle.pipeline import ProcessedRound

ROUND_REWARD = 1_000 * TOKEN_DECIMALS
TASKS = ("bundled", "real")
# Up to this many clients without --per-client the bundled task is split as it always was (its
# figures and tests are pinned); beyond, or with --per-client, the task grows with the clients.
LEGACY_SPLIT_MAX_CLIENTS = 10
BUNDLED_PER_CLIENT = 16


@dataclass
class SimulationConfig:
    clients: int = 3
    rounds: int = 3
    model: str = "tiny"
    strategy: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_STRATEGY))
    malicious: int = 0
    seed: int = 0
    steps: int = 50
    out: Path = Path("runs/simulate")
    scoring: str = field(default_factory=lambda: RoundRules().scoring)  # the round rules' default
    network: str = "ethereum:local:test"
    task: str = "bundled"  # one of TASKS
    device: str = "cpu"  # where clients train and the oracle evaluates (cpu, cuda, mps, auto)
    quantization: str | None = None  # clients load the frozen base model 4bit/8bit (QLoRA, CUDA)
    # torch CPU threads (None: 1 for the tiny model and for the real task on CPU, where a second
    # thread on 2 busy cores costs far more in synchronisation than it gains; else torch's default)
    threads: int | None = None
    eval_limit: int | None = None  # real task: ARC questions the oracle scores (None: its default)
    per_client: int | None = None  # questions each client holds (None: the task's default)
    skew: float = 0.8  # bundled task: share of a client's questions with its home answer letter
    cohort_size: int = 0  # clients the contract samples per round (0: every registered client)
    cache_dir: Path | None = None  # where the base model is built / converted (None: out/cache)
    # Clients trained at once: 1 trains them one after another in this process; N > 1 in N warm
    # worker processes (local backend) or N Ray CPUs. The same numbers for a seed either way.
    workers: int = 1
    backend: str = "local"  # "local" (this machine) or "ray"
    address: str | None = None  # ray: an existing cluster's address (None: start a local instance)


@dataclass
class SimulationTask:
    """What a simulation federates: the task every party agrees on and each client's share.
    ``describe`` goes into the summary's settings (the bundled task adds nothing)."""

    spec: TaskSpec
    shares: list[list[MCQuestion]]
    describe: dict[str, Any] = field(default_factory=dict)


def bundled_task(config: SimulationConfig) -> SimulationTask:
    """The synthetic task, split non-IID among the clients (skewed answer letters). Past
    ``LEGACY_SPLIT_MAX_CLIENTS`` clients, or with ``per_client``, the task grows so that every client
    holds ``per_client`` questions (:func:`make_task_for`): 1,000 clients run."""
    spec = TaskSpec(model=config.model, task_seed=config.seed, lora_seed=config.seed, steps=config.steps)
    if config.per_client is None and config.clients <= LEGACY_SPLIT_MAX_CLIENTS:
        shares = make_task(seed=config.seed).split_non_iid(config.clients, seed=config.seed, skew=config.skew)
        return SimulationTask(spec, shares)
    per_client = config.per_client or BUNDLED_PER_CLIENT
    _, shares = make_task_for(config.clients, per_client, skew=config.skew, seed=config.seed)
    return SimulationTask(spec, shares, {"per_client": per_client, "skew": config.skew})


def real_task(config: SimulationConfig) -> SimulationTask:
    """The real task (:mod:`flb_dapp.evaluation.real_task`): client ``i`` holds source ``i``."""
    from flb_dapp.evaluation.real_task import (
        RealTaskSettings,
        client_names,
        real_task_shares,
        real_task_spec,
    )

    if config.model == "tiny":
        raise ConfigError("the real task needs a real model (smollm2 or a Hugging Face id), not tiny")
    defaults = RealTaskSettings()
    settings = RealTaskSettings(
        per_client=config.per_client or defaults.per_client,
        eval_limit=config.eval_limit or defaults.eval_limit,
        steps=config.steps,
    )
    spec = real_task_spec(config.seed, settings, model=config.model)
    shares = real_task_shares(config.clients, settings.per_client, seed=config.seed)
    describe = {
        "task": "real",
        "sources": client_names(config.clients),
        "per_client": settings.per_client,
        "eval_limit": settings.eval_limit,
    }
    return SimulationTask(spec, shares, describe)


def build_task(config: SimulationConfig) -> SimulationTask:
    if config.task not in TASKS:
        raise ConfigError(f"unknown task {config.task!r}; choose one of {TASKS}")
    return real_task(config) if config.task == "real" else bundled_task(config)


def simulation_threads(config: SimulationConfig) -> int | None:
    """The torch CPU thread count to set for this run (None: leave torch's default)."""
    if config.threads is not None:
        return config.threads
    on_cpu = config.device == "cpu"
    return 1 if config.model == "tiny" or (config.task == "real" and on_cpu) else None


@dataclass
class RoundRow:
    round: int
    accuracy: float
    loss: float
    accepted: int
    rejected: int
    finalize_gas: int
    epsilon: float
    rewards: dict[str, int]
    global_model_cid: str
    report_cid: str
    down_weighted: list[str]


def poison(update: Adapter, base: Adapter) -> Adapter:
    """A malicious client's update: its honest change, sign-flipped and scaled by 10."""
    tensors = {
        k: (base.tensors[k] - 10.0 * (v - base.tensors[k])).astype(np.float32)
        for k, v in update.tensors.items()
    }
    return Adapter(tensors, update.metadata, dict(update.extra))


def _client_accounts(n: int) -> list[Any]:
    from ape import accounts

    test_accounts = accounts.test_accounts
    clients = [test_accounts[2 + i] for i in range(min(n, len(test_accounts) - 2))]
    while len(clients) < n:
        extra = test_accounts.generate_test_account()
        test_accounts[0].transfer(extra, 10**18)
        clients.append(extra)
    return clients


def run_simulation(
    config: SimulationConfig,
    on_round: Callable[[RoundRow], None] | None = None,
    task: SimulationTask | None = None,
) -> dict[str, Any]:
    """Run the simulation on the connected chain; returns the summary it writes. ``task``: what to
    federate (default: :func:`build_task` of ``config.task``)."""
    task = task or build_task(config)
    # Started first: pool workers import the training stack on the idle core while this process
    # deploys the contracts, so the rounds pay for training only.
    engine = open_engine(config.backend, config.workers, len(task.shares), config.address)
    if isinstance(engine, InProcessTrainer):
        # Training and evaluation run in this process (with a pool or Ray, this process never
        # loads torch: the workers own their threads and seeds).
        import torch

        torch.manual_seed(config.seed)
        threads = simulation_threads(config)
        if threads is not None:
            # NOTE: the tiny model is far faster on one thread: two threads spend their time in
            # synchronisation (measured 3 s vs 44 s for 50 steps on a busy 2-core machine); so is
            # SmolLM2 there (0.27 s vs 4 s a cloze question).
            torch.set_num_threads(threads)
    try:
        return _simulate(config, task, engine, on_round)
    finally:
        engine.close()


def _simulate(
    config: SimulationConfig,
    task: SimulationTask,
    engine: TrainingEngine,
    on_round: Callable[[RoundRow], None] | None,
) -> dict[str, Any]:
    from ape import accounts

    from oracle.pipeline import Oracle

    out = config.out
    (out / "reports").mkdir(parents=True, exist_ok=True)
    spec = task.spec
    plan = FederationPlan(
        spec=spec,
        round_duration=3600,
        fund_amount=ROUND_REWARD * config.rounds,
        network=config.network,
        deployment_path=out / "deployment.json",
        oracle={"strategy": config.strategy, "scoring": config.scoring},
        cohort_size=config.cohort_size,
    )
    clients = _client_accounts(len(task.shares))
    operator, oracle_account = accounts.test_accounts[0], accounts.test_accounts[1]
    cache = config.cache_dir or out / "cache"
    initial = build_initial_adapter(engine, spec, cache)
    federation = build_federation(
        out, operator, oracle_account, clients, task.shares, plan, cache_dir=cache, initial=initial
    )
    federation.scorer = open_scorer(engine, spec, cache, config.device, simulation_threads(config))
    oracle = Oracle.for_federation(federation)
    malicious = {c.address for c in clients[len(clients) - config.malicious :]} if config.malicious else set()
    rows: list[RoundRow] = []
    claimed: dict[str, int] = {}
    initial_accuracy: float | None = None
    timings: list[dict[str, float]] = []
    for round_number in range(1, config.rounds + 1):
        started = time.perf_counter()
        seconds = _train_and_submit(federation, config, round_number, malicious, engine)
        submitted = time.perf_counter()
        [processed] = oracle.run_once()
        assert processed.outcome is not None
        report = processed.outcome.report
        write_report(out / "reports", report, processed.outcome.rewards.tree)
        if initial_accuracy is None:
            initial_accuracy = report.metrics.before.accuracy
        oracle_done = time.perf_counter()
        _claim_all(federation, report, claimed)
        seconds["submit"] = submitted - started - seconds["train"]
        seconds["claims"] = time.perf_counter() - oracle_done
        seconds.update({f"oracle_{k}": v for k, v in processed.timings.items()})
        timings.append(seconds)
        rows.append(_row(report, processed))
        if on_round:
            on_round(rows[-1])
    summary = {
        "initial_accuracy": initial_accuracy,
        "rounds": [row.__dict__ for row in rows],
        "claimed": {c.address: claimed.get(c.address, 0) for c in clients},
        "malicious": sorted(malicious),
        "contract": federation.record.coordinator,
        "chain_id": federation.record.chain_id,
        "settings": {
            "clients": len(clients),
            "rounds": config.rounds,
            "model": config.model,
            "strategy": config.strategy,
            "malicious": config.malicious,
            "seed": config.seed,
            "steps": config.steps,
            "scoring": config.scoring,
            **task.describe,
        },
        # wall seconds per round: training, submitting (store, commit, reveal), the oracle's steps
        # (oracle_total is all of them, finalize included) and the claims
        "timings": timings,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_summary(summary, out / "plot.png")
    return summary


def training_jobs(
    federation: Federation, config: SimulationConfig, round_number: int, global_adapter: bytes
) -> list[TrainJob]:
    """The round's cohort's training, as plain-data jobs. The seed names the client and the round,
    never the worker, so every engine trains the same adapters."""
    return [
        TrainJob.make(
            federation.spec,
            federation.shares[index],
            global_adapter,
            cache_dir=federation.settings.cache_dir,
            seed=config.seed * 1000 + round_number * 100 + index,
            client=federation.clients[index].address,
            round=round_number,
            device=config.device,
            quantization=config.quantization,
            num_threads=simulation_threads(config),
        )
        for index in federation.cohort(round_number)
    ]


def _train_and_submit(
    federation: Federation,
    config: SimulationConfig,
    round_number: int,
    malicious: set[str],
    engine: TrainingEngine,
) -> dict[str, float]:
    """The round's cohort pulls the global adapter by CID and trains on its own shares (on the
    engine, in parallel where it can); here each adapter is decoded and checked, a malicious
    client's poisoned, stored and committed; the last commit closes the commit phase, then all reveal."""
    data = federation.store.get_bytes(federation.coordinator.latest_global_model_cid)
    base = decode_adapter(data)
    jobs = training_jobs(federation, config, round_number, data)
    entries = []
    started = time.perf_counter()
    trained = engine.train(jobs)
    seconds = {"train": time.perf_counter() - started, "clients": float(len(jobs))}
    for job, encoded in zip(jobs, trained, strict=True):
        adapter = decode_adapter(encoded)
        meta = adapter.metadata
        if (meta.client, meta.round) != (job.client, job.round):
            raise TrainingError(f"a worker returned {meta.client}'s round {meta.round} for {job.client}")
        if job.client in malicious:
            encoded = encode_adapter(poison(adapter, base))
        cid = federation.store.put_bytes(encoded)
        client = next(c for c in federation.clients if c.address == job.client)
        entries.append((client, round_number, cid, meta.num_samples))
    federation.coordinator.submit_all(entries)
    return seconds


def _claim_all(federation: Federation, report: RoundReport, claimed: dict[str, int]) -> None:
    """Every client claims what the report says it has earned so far."""
    sdk = federation.coordinator
    with sdk.batch():
        for client in federation.clients:
            amount = report.rewards.cumulative_of(client.address)
            if amount > claimed.get(client.address, 0):
                proof = [bytes.fromhex(p[2:]) for p in report.rewards.proof_of(client.address)]
                sdk.claim(client, amount, proof)
                claimed[client.address] = sdk.client(client.address).claimed


def _row(report: RoundReport, processed: ProcessedRound) -> RoundRow:
    after = report.metrics.after
    return RoundRow(
        round=report.round,
        accuracy=after.accuracy,
        loss=float("nan") if after.loss is None else after.loss,
        accepted=len(report.accepted),
        rejected=len(report.rejected),
        finalize_gas=processed.finalize_gas,
        epsilon=report.privacy.epsilon,
        rewards=dict(report.rewards.round),
        global_model_cid=processed.global_model_cid,
        report_cid=processed.report_cid,
        down_weighted=_down_weighted(report),
    )


def _down_weighted(report: RoundReport) -> list[str]:
    """Accepted clients that the rule gave less than half an equal share (trimmed away, not selected)."""
    accepted = [d for d in report.inputs if d.accepted]
    fair = 1.0 / max(1, len(accepted))
    return [d.client for d in accepted if d.weight < fair / 2]
