"""`flb simulate`: a whole federation in one process on the embedded defaults (top floor: it runs
the oracle service in process, so it lives beside the commands, above the library).

Ape's embedded chain, the local content-addressed store and a task (a :class:`SimulationTask`: the
TaskSpec and each client's share): the contracts are deployed, N clients register, and for R rounds
every client pulls the global adapter by CID, trains on its own share, stores its adapter and
submits the CID; the oracle pipeline aggregates, evaluates, rewards and finalizes; every client
claims. The same SDK, store, training and oracle code as the real services, with no shortcut around
the contract or the store.

Tasks: ``bundled`` (the synthetic task split non-IID by answer letter, any model) and ``real``
(:mod:`flb_dapp.evaluation.real_task`: each client holds a different real benchmark's questions,
the oracle scores held-out ARC in the cloze formulation).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from flb_dapp.aggregation.registry import DEFAULT_STRATEGY
from flb_dapp.atomic import atomic_write_bytes, atomic_write_text
from flb_dapp.chain.deployment import TOKEN_DECIMALS
from flb_dapp.evaluation.datasets import MCQuestion
from flb_dapp.evaluation.task import make_task
from flb_dapp.exceptions import ConfigError
from flb_dapp.federation import Federation, FederationPlan, build_federation
from flb_dapp.lora.adapter import Adapter
from flb_dapp.lora.codec import encode_adapter
from flb_dapp.merkle import RewardsTree
from flb_dapp.report import RoundReport, canonical_json
from flb_dapp.taskspec import TaskSpec, make_evaluator, train_config
from flb_dapp.training.trainer import train_client

if TYPE_CHECKING:
    from oracle.pipeline import ProcessedRound

ROUND_REWARD = 1_000 * TOKEN_DECIMALS
TASKS = ("bundled", "real")


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
    scoring: str = "leave-one-out"
    network: str = "ethereum:local:test"
    task: str = "bundled"  # one of TASKS
    device: str = "cpu"  # where clients train and the oracle evaluates (cpu, cuda, mps, auto)
    quantization: str | None = None  # clients load the frozen base model 4bit/8bit (QLoRA, CUDA)
    # torch CPU threads (None: 1 for the tiny model and for the real task on CPU, where a second
    # thread on 2 busy cores costs far more in synchronisation than it gains; else torch's default)
    threads: int | None = None
    eval_limit: int | None = None  # real task: ARC questions the oracle scores (None: its default)
    per_client: int | None = None  # real task: questions each client holds (None: its default)
    cache_dir: Path | None = None  # where the base model is built / converted (None: out/cache)


@dataclass
class SimulationTask:
    """What a simulation federates: the task every party agrees on and each client's share.
    ``describe`` goes into the summary's settings (the bundled task adds nothing)."""

    spec: TaskSpec
    shares: list[list[MCQuestion]]
    describe: dict[str, Any] = field(default_factory=dict)


def bundled_task(config: SimulationConfig) -> SimulationTask:
    """The synthetic task, split non-IID among the clients (skewed answer letters)."""
    spec = TaskSpec(model=config.model, task_seed=config.seed, lora_seed=config.seed, steps=config.steps)
    return SimulationTask(spec, make_task(seed=config.seed).split_non_iid(config.clients, seed=config.seed))


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
    import torch
    from ape import accounts

    from oracle.pipeline import Oracle

    torch.manual_seed(config.seed)
    threads = simulation_threads(config)
    if threads is not None:
        # NOTE: the tiny model is far faster on one thread: two threads spend their time in
        # synchronisation (measured 3 s vs 44 s for 50 steps on a busy 2-core machine); so is
        # SmolLM2 there (0.27 s vs 4 s a cloze question).
        torch.set_num_threads(threads)
    out = config.out
    (out / "reports").mkdir(parents=True, exist_ok=True)
    task = task or build_task(config)
    spec = task.spec
    plan = FederationPlan(
        spec=spec,
        round_duration=3600,
        fund_amount=ROUND_REWARD * config.rounds,
        network=config.network,
        deployment_path=out / "deployment.json",
        oracle={"strategy": config.strategy, "scoring": config.scoring},
    )
    clients = _client_accounts(len(task.shares))
    operator, oracle_account = accounts.test_accounts[0], accounts.test_accounts[1]
    federation = build_federation(
        out, operator, oracle_account, clients, task.shares, plan, cache_dir=config.cache_dir
    )
    federation.scorer = make_evaluator(spec, federation.settings.cache_dir, device=config.device)
    oracle = Oracle.for_federation(federation)
    malicious = {c.address for c in clients[len(clients) - config.malicious :]} if config.malicious else set()
    rows: list[RoundRow] = []
    claimed: dict[str, int] = {}
    initial_accuracy: float | None = None
    for round_number in range(1, config.rounds + 1):
        _train_and_submit(federation, config, round_number, malicious)
        [processed] = oracle.run_once()
        assert processed.outcome is not None
        report = processed.outcome.report
        write_report(out / "reports", report, processed.outcome.rewards.tree)
        if initial_accuracy is None:
            initial_accuracy = report.metrics.before.accuracy
        _claim_all(federation, report, claimed)
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
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plot_summary(summary, out / "plot.png")
    return summary


def _train_and_submit(
    federation: Federation, config: SimulationConfig, round_number: int, malicious: set[str]
) -> None:
    """Every client pulls the global adapter by CID, trains on its own share and commits; the last
    commit closes the commit phase, then all reveal."""
    base = federation.global_adapter()  # verified against the on-chain CID
    spec, cache = federation.spec, federation.settings.cache_dir
    entries = []
    for index, (client, share) in enumerate(zip(federation.clients, federation.shares, strict=True)):
        trained = train_config(
            spec,
            cache,
            seed=config.seed * 1000 + round_number * 100 + index,
            device=config.device,
            quantization=config.quantization,
        )
        adapter = train_client(trained, share, base, client=client.address, round=round_number).adapter
        if client.address in malicious:
            adapter = poison(adapter, base)
        cid = federation.store.put_bytes(encode_adapter(adapter))
        entries.append((client, round_number, cid, adapter.metadata.num_samples))
    federation.coordinator.submit_all(entries)


def _claim_all(federation: Federation, report: RoundReport, claimed: dict[str, int]) -> None:
    """Every client claims what the report says it has earned so far."""
    sdk = federation.coordinator
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


def write_report(folder: Path, report: RoundReport, tree: RewardsTree) -> Path:
    """``round-N.json`` and, beside it, ``round-N.rewards-tree.json``: the rewards tree as
    OpenZeppelin's ``StandardMerkleTree.load`` reads it (what claim front ends use)."""
    path = folder / f"round-{report.round}.json"
    atomic_write_bytes(path, report.to_json())
    if tree.amounts:
        atomic_write_bytes(
            folder / f"round-{report.round}.rewards-tree.json", canonical_json(tree.standard_dump())
        )
    return path


def plot_summary(summary: dict[str, Any], path: Path) -> Path:
    """Accuracy per round, and each client's reward per round, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [0] + [r["round"] for r in summary["rounds"]]
    accuracy = [summary["initial_accuracy"]] + [r["accuracy"] for r in summary["rounds"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    left.plot(rounds, accuracy, marker="o", color="#2563eb", linewidth=2)
    left.set(title="Held-out accuracy", xlabel="round", ylabel="accuracy", ylim=(0, 1), xticks=rounds)
    left.grid(alpha=0.3)
    clients = sorted({c for r in summary["rounds"] for c in r["rewards"]} | set(summary["claimed"]))
    width = 0.8 / max(1, len(clients))
    for i, client in enumerate(clients):
        values = [r["rewards"].get(client, 0) / TOKEN_DECIMALS for r in summary["rounds"]]
        xs = [r["round"] + (i - (len(clients) - 1) / 2) * width for r in summary["rounds"]]
        label = client[:8] + ("… (malicious)" if client in summary.get("malicious", []) else "…")
        right.bar(xs, values, width=width, label=label)
    right.set(
        title="Rewards per round (FLBR)",
        xlabel="round",
        ylabel="tokens",
        xticks=[r["round"] for r in summary["rounds"]],
    )
    right.legend(fontsize=7)
    right.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
