"""`flb simulate`: deploy, register N clients, and run R real federated rounds in one process."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from flb_dapp.cli.context import CLIContext, pass_cli

STRATEGY_NAMES = ["fedavg", "median", "trimmed-mean", "multi-krum"]
F = TypeVar("F", bound=Callable[..., Any])


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CLIContext).verbose = True


def verbose_option(f: F) -> F:
    """``-v/--verbose`` after a command that starts a whole system: the same as ``flb -v COMMAND``
    (so `flb simulate ... -v` works where users add it, at the end)."""
    return click.option(
        "--verbose",
        "-v",
        is_flag=True,
        expose_value=False,
        callback=_set_verbose,
        is_eager=True,
        help="Also show Ape's log: every transaction sent and confirmed.",
    )(f)


@contextmanager
def ape_logging(verbose: bool) -> Iterator[None]:
    """Ape's log at INFO with ``verbose``, else errors only, for the duration of the block.

    Ape logs every transaction it submits and confirms, and every deployment, at INFO/SUCCESS: a
    run of many rounds would bury its own table under them. Unlike Ape's ``logger.at_level``, the
    previous level comes back even when the block raises (in-process callers keep their setup).
    """
    from ape.logging import logger

    previous = logger.level
    logger.set_level(logging.INFO if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.set_level(previous)


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


@click.command("simulate")
@click.option("--clients", default=3, show_default=True, help="Number of data owners.")
@click.option("--rounds", default=3, show_default=True, help="Number of federated rounds.")
@click.option(
    "--model", default="tiny", show_default=True, help="tiny, smollm2, or a Hugging Face model path/id."
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGY_NAMES),
    default="fedavg",
    show_default=True,
    help="Aggregation rule the oracle uses.",
)
@click.option(
    "--dp",
    type=click.Choice(["none", "fixed", "adaptive"]),
    default="none",
    show_default=True,
    help="Server-side differential privacy (clipping + Gaussian noise).",
)
@click.option("--clip-norm", type=float, default=None, help="Clip norm C for --dp fixed (default 1.0).")
@click.option(
    "--noise-multiplier", type=float, default=None, help="Noise multiplier z for --dp (default 1.0)."
)
@click.option("--malicious", default=0, show_default=True, help="Clients that send poisoned updates.")
@click.option("--steps", default=50, show_default=True, help="Local training steps per client per round.")
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
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the table.")
@verbose_option
@pass_cli
def simulate(
    cli: CLIContext,
    clients: int,
    rounds: int,
    model: str,
    strategy: str,
    dp: str,
    clip_norm: float | None,
    noise_multiplier: float | None,
    malicious: int,
    steps: int,
    seed: int,
    out: Path,
    network: str,
    as_json: bool,
) -> None:
    """Run a whole federation in one process on the embedded chain and the local store."""
    from rich.console import Console
    from rich.table import Table

    from flb_dapp.chain.deployment import TOKEN_DECIMALS
    from flb_dapp.chain.network import connect
    from flb_dapp.cli.simulation import RoundRow, SimulationConfig, run_simulation

    if clients < 1 or rounds < 1:
        raise click.BadParameter("--clients and --rounds must be at least 1")
    if not 0 <= malicious < clients:
        raise click.BadParameter(f"--malicious must be between 0 and {clients - 1}")
    config = SimulationConfig(
        clients=clients,
        rounds=rounds,
        model=model,
        malicious=malicious,
        seed=seed,
        steps=steps,
        out=out,
        network=network,
        strategy=strategy_spec(strategy, dp, clip_norm, noise_multiplier, malicious),
    )
    console = Console(stderr=as_json)
    table = Table(
        title=f"FLB simulation: {clients} clients, {rounds} rounds, {strategy}"
        + (f", dp={dp}" if dp != "none" else "")
        + (f", {malicious} malicious" if malicious else "")
    )
    for column in ("round", "accuracy", "loss", "ok/rej", "gas", "epsilon", "rewards per client (FLBR)"):
        table.add_column(column, justify="right" if column != "rewards per client (FLBR)" else "left")

    def show(row: RoundRow) -> None:
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

    where = "Ape's embedded chain" if network == "ethereum:local:test" else network
    console.print(f"deploying on {where}; run folder {out}", soft_wrap=True)
    with ape_logging(cli.verbose), connect(network):
        summary = run_simulation(config, on_round=show)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    console.print(table)
    # Plain lines: paths must stay whole for users and scripts, whatever the terminal width.
    click.echo(f"accuracy {summary['initial_accuracy']:.3f} -> {summary['rounds'][-1]['accuracy']:.3f}")
    click.echo(f"summary: {out / 'summary.json'}")
    click.echo(f"plot:    {out / 'plot.png'}")
    click.echo(f"reports: {out / 'reports'}")
