"""`flb-oracle` (also `python -m oracle`): run the oracle service, process what is due once, or
verify a finalized round."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from flb_dapp.config import load_settings
from flb_dapp.exceptions import FLBError


def _settings(config: str | None, network: str | None) -> Any:
    return load_settings(config, network=network)


def settings_options(command: Any) -> Any:
    """`--config` / `--network` after the subcommand too (`flb-oracle once --config f.yaml`)."""
    command = click.option("--network", "sub_network", default=None, help="Overrides the group's --network.")(
        command
    )
    return click.option("--config", "sub_config", default=None, help="Overrides the group's --config.")(
        command
    )


def _resolve(ctx: click.Context, sub_config: str | None, sub_network: str | None) -> Any:
    if sub_config is None and sub_network is None:
        return ctx.obj
    parent = ctx.parent.params if ctx.parent else {}
    return _settings(sub_config or parent.get("config"), sub_network or parent.get("network"))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config", default=None, help="YAML settings file (default: flb.yaml or $FLB_CONFIG)."
)
@click.option("--network", default=None, help="Ape network choice or node RPC URI (overrides the file).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, network: str | None, verbose: bool) -> None:
    """The FLB oracle: aggregates each due round and finalizes it on chain."""
    configure_logging(verbose)
    ctx.obj = _settings(config, network)


def configure_logging(verbose: bool) -> None:
    """The services' log format; FLB's own loggers at INFO, the rest at WARNING unless verbose."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("flb").setLevel(logging.INFO)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the processed rounds as JSON.")
@settings_options
@click.pass_context
def once(ctx: click.Context, as_json: bool, sub_config: str | None, sub_network: str | None) -> None:
    """Process every round that is due now, then exit."""
    from flb_dapp.cli.session import ape_logging
    from oracle.service import open_oracle, summarize

    settings = _resolve(ctx, sub_config, sub_network)
    # NOTE: Ape logs each confirmed transaction on stdout: --json must print JSON only.
    with ape_logging(not as_json), open_oracle(settings) as oracle:
        done = [summarize(p) for p in oracle.run_once()]
    if as_json:
        click.echo(json.dumps(done, indent=2))
    elif not done:
        click.echo("no round is due")
    for item in [] if as_json else done:
        click.echo(
            f"round {item['round']} finalized: model {item['global_model_cid']}, "
            f"report {item['report_cid']}, rewards root {item['rewards_root']}, gas {item['finalize_gas']}"
        )


@cli.command()
@settings_options
@click.pass_context
def run(ctx: click.Context, sub_config: str | None, sub_network: str | None) -> None:
    """Run the service: check every interval, finalize due rounds, serve the control endpoint."""
    from oracle.service import OracleService, open_oracle

    settings = _resolve(ctx, sub_config, sub_network)
    with open_oracle(settings) as oracle:
        OracleService(oracle, settings).run()


@cli.command()
@click.argument("round_number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@settings_options
@click.pass_context
def verify(
    ctx: click.Context, round_number: int, as_json: bool, sub_config: str | None, sub_network: str | None
) -> None:
    """Recompute ROUND_NUMBER from the chain and the store alone and compare."""
    from flb_dapp.audit import verify_round
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import DeploymentRecord
    from flb_dapp.chain.network import connect
    from flb_dapp.storage.factory import open_store
    from flb_dapp.taskspec import make_evaluator

    settings = _resolve(ctx, sub_config, sub_network)
    with connect(settings.network):
        record = DeploymentRecord.load(settings.deployment)
        result = verify_round(
            Coordinator(record.coordinator, record.block),
            open_store(settings.store),
            round_number,
            start_block=record.block,
            # NOTE: the task the report records, not this machine's settings
            scorer_for_task=lambda task: make_evaluator(task, settings.cache_dir),
        )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for name, ok in result.checks.items():
            click.echo(f"{'ok ' if ok else 'BAD'} {name}")
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(f"round {round_number}: {'verified' if result.ok else 'MISMATCH'}")
    if not result.ok:
        sys.exit(3)


def main_guard(group: click.Group) -> None:
    """Run a click group as a console script: FLB errors print their message and exit code."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FLBError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)


def main() -> None:
    main_guard(cli)


if __name__ == "__main__":
    main()
