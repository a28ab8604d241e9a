"""`flb simulate`: deploy, register N clients, and run R real federated rounds in one process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import (
    as_json_option,
    device_option,
    dp_option,
    engine_options,
    quantization_option,
    scoring_option,
    strategy_option,
    threads_option,
    verbose_option,
)

BUNDLED_STEPS = 50


def strategy_spec(
    name: str, dp: str, clip_norm: float | None, noise_multiplier: float | None, malicious: int
) -> dict[str, Any]:
    """The oracle's strategy setting for these flags (validated by building it once)."""
    from flb_dapp.aggregation import make_strategy
    from flb_dapp.aggregation.registry import DEFAULT_STRATEGY

    spec: dict[str, Any] = dict(DEFAULT_STRATEGY) if name == DEFAULT_STRATEGY["name"] else {"name": name}
    if name == "multi-krum":
        spec["num_malicious"] = malicious
    if dp != "none":
        spec["dp"] = dp
        spec["noise_multiplier"] = 1.0 if noise_multiplier is None else noise_multiplier
        if dp == "fixed":
            spec["clip_norm"] = 1.0 if clip_norm is None else clip_norm
    params = {k: v for k, v in spec.items() if k != "name"}
    make_strategy(name, **params)
    return spec


def default_steps(task: str) -> int:
    if task == "real":
        from flb_dapp.evaluation.real_task import RealTaskSettings

        return RealTaskSettings().steps
    return BUNDLED_STEPS


def check_task(config: Any) -> None:
    """The task's own limits, as usage errors before anything is deployed."""
    from flb_dapp.evaluation.real_task import CLIENT_SOURCES

    if config.task == "real" and config.model == "tiny":
        raise click.BadParameter("the real task needs a real model: --model smollm2 (or a Hugging Face id)")
    if config.task == "real" and config.clients > len(CLIENT_SOURCES):
        raise click.BadParameter(f"the real task has at most {len(CLIENT_SOURCES)} clients (one per source)")
    if config.task != "real" and config.eval_limit:
        raise click.BadParameter("--eval-limit applies to --task real only")
    if not 0 <= config.cohort_size <= config.clients:
        raise click.BadParameter(f"--cohort must be between 0 and --clients ({config.clients})")


@click.command("simulate")
@click.option("--clients", default=3, show_default=True, help="Number of data owners.")
@click.option("--rounds", default=3, show_default=True, help="Number of federated rounds.")
@click.option(
    "--model", default="tiny", show_default=True, help="tiny, smollm2, or a Hugging Face model path/id."
)
@strategy_option()
@scoring_option
@dp_option
@click.option("--clip-norm", type=float, default=None, help="Clip norm C for --dp fixed (default 1.0).")
@click.option(
    "--noise-multiplier", type=float, default=None, help="Noise multiplier z for --dp (default 1.0)."
)
@click.option("--malicious", default=0, show_default=True, help="Clients that send poisoned updates.")
@click.option(
    "--task",
    type=click.Choice(["bundled", "real"]),
    default="bundled",
    show_default=True,
    help="bundled: the synthetic task split by answer letter. real: each client holds a different "
    "real benchmark (SciQ, OpenBookQA, CommonsenseQA, MMLU STEM), the oracle scores held-out ARC "
    "(cloze); needs a real --model (smollm2).",
)
@click.option(
    "--steps",
    type=click.IntRange(min=0),
    default=None,
    help=f"Local training steps per client per round [default: {BUNDLED_STEPS}; real task: 10].",
)
@click.option(
    "--per-client",
    type=click.IntRange(min=1),
    help="Questions each client holds [real task 256; bundled: its fixed split up to 10 clients, "
    "16 each beyond].",
)
@click.option(
    "--skew",
    type=click.FloatRange(0.25, 1.0),
    default=0.8,
    show_default=True,
    help="Bundled task: share of a client's questions with its home answer letter (0.25: IID).",
)
@click.option(
    "--cohort",
    "cohort_size",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Clients the contract samples to train each round (0: every registered client).",
)
@click.option(
    "--eval-limit", type=click.IntRange(min=1), help="Real task: ARC questions the oracle scores [100]."
)
@device_option("Where clients train and the oracle evaluates.", default="cpu")
@quantization_option("Clients load the frozen base model quantized (QLoRA; CUDA).")
@threads_option("torch CPU threads [1 for tiny and for the real task on CPU; else torch's default].")
@engine_options
@click.option(
    "--seed", default=0, show_default=True, help="Seed of the task split, the LoRA init and training."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/simulate"),
    show_default=True,
    help="Run folder: reports, summary.json, plot.png.",
)
@click.option(
    "--network",
    default="ethereum:local:test",
    show_default=True,
    help="Ape's embedded chain, or a dev node's RPC URI (anvil) to keep the chain after the run.",
)
@as_json_option("Print summary.json instead of the table.")
@verbose_option
@pass_cli
def simulate(
    cli: CLIContext,
    clients: int,
    rounds: int,
    model: str,
    strategy: str,
    scoring: str,
    dp: str,
    clip_norm: float | None,
    noise_multiplier: float | None,
    malicious: int,
    task: str,
    steps: int | None,
    per_client: int | None,
    skew: float,
    cohort_size: int,
    eval_limit: int | None,
    device: str,
    quantization: str | None,
    threads: int | None,
    workers: int,
    backend: str,
    address: str | None,
    seed: int,
    out: Path,
    network: str,
    as_json: bool,
) -> None:
    """Run a whole federation in one process on the embedded chain and the local store."""
    from rich.console import Console

    from flb_dapp.chain.network import connect
    from flb_dapp.cli.session import ape_logging
    from flb_dapp.cli.simulation import SimulationConfig, run_simulation

    if clients < 1 or rounds < 1:
        raise click.BadParameter("--clients and --rounds must be at least 1")
    if address is not None and backend != "ray":
        raise click.BadParameter("--address names a Ray cluster: add --backend ray")
    if not 0 <= malicious < clients:
        raise click.BadParameter(f"--malicious must be between 0 and {clients - 1}")
    config = SimulationConfig(
        clients=clients,
        rounds=rounds,
        model=model,
        malicious=malicious,
        seed=seed,
        steps=default_steps(task) if steps is None else steps,
        out=out,
        network=network,
        strategy=strategy_spec(strategy, dp, clip_norm, noise_multiplier, malicious),
        scoring=scoring,
        task=task,
        device=device,
        quantization=quantization,
        threads=threads,
        eval_limit=eval_limit,
        per_client=per_client,
        skew=skew,
        cohort_size=cohort_size,
        workers=workers,
        backend=backend,
        address=address,
    )
    check_task(config)
    console = Console(stderr=as_json)
    table, show = round_table(run_title(config, strategy, dp), console)
    where = "Ape's embedded chain" if network == "ethereum:local:test" else network
    console.print(f"deploying on {where}; run folder {out}", soft_wrap=True)
    with ape_logging(cli.verbose), connect(network):
        summary = run_simulation(config, on_round=show)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    console.print(table)
    print_outputs(summary, out)


def print_outputs(summary: dict[str, Any], out: Path) -> None:
    """The accuracy change and where the run's files are, as plain lines: paths must stay whole
    for users and scripts, whatever the terminal width."""
    click.echo(f"accuracy {summary['initial_accuracy']:.3f} -> {summary['rounds'][-1]['accuracy']:.3f}")
    click.echo(f"summary: {out / 'summary.json'}")
    click.echo(f"plot:    {out / 'plot.png'}")
    click.echo(f"reports: {out / 'reports'}")


def run_title(config: Any, strategy: str, dp: str) -> str:
    return (
        f"FLB simulation: {config.clients} clients, {config.rounds} rounds, {strategy}"
        + (", real task" if config.task == "real" else "")
        + (f", dp={dp}" if dp != "none" else "")
        + (f", {config.malicious} malicious" if config.malicious else "")
    )


def round_table(title: str, console: Any) -> tuple[Any, Callable[[Any], None]]:
    """The summary table and the callback that adds a round to it and prints its line as it ends."""
    from rich.table import Table

    from flb_dapp.chain.deployment import TOKEN_DECIMALS

    table = Table(title=title)
    for column in ("round", "accuracy", "loss", "ok/rej", "gas", "epsilon", "rewards per client (FLBR)"):
        table.add_column(column, justify="right" if column != "rewards per client (FLBR)" else "left")

    def show(row: Any) -> None:
        rewards = " / ".join(f"{a / TOKEN_DECIMALS:.1f}" for _, a in sorted(row.rewards.items()))
        table.add_row(
            str(row.round),
            f"{row.accuracy:.3f}",
            f"{row.loss:.3f}",
            f"{row.accepted}/{row.rejected}",
            f"{row.finalize_gas:,}",
            f"{row.epsilon:.3g}",
            rewards,
        )
        console.print(
            f"round {row.round}: accuracy {row.accuracy:.3f}, loss {row.loss:.3f}, "
            f"{row.accepted} accepted, {row.rejected} rejected, gas {row.finalize_gas:,}"
        )

    return table, show
