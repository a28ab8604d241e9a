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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config", default=None, help="YAML settings file (default: flb.yaml or $FLB_CONFIG)."
)
@click.option("--network", default=None, help="Ape network choice or node RPC URI (overrides the file).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, network: str | None, verbose: bool) -> None:
    """The FLB oracle: aggregates each due round and finalizes it on chain."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("flb").setLevel(logging.INFO)
    ctx.obj = _settings(config, network)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the processed rounds as JSON.")
@click.pass_obj
def once(settings: Any, as_json: bool) -> None:
    """Process every round that is due now, then exit."""
    from oracle.service import open_oracle, summarize

    with open_oracle(settings) as oracle:
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
@click.pass_obj
def run(settings: Any) -> None:
    """Run the service: check every interval, finalize due rounds, serve the control endpoint."""
    from oracle.service import OracleService, open_oracle

    with open_oracle(settings) as oracle:
        OracleService(oracle, settings).run()


@cli.command()
@click.argument("round_number", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def verify(settings: Any, round_number: int, as_json: bool) -> None:
    """Recompute ROUND_NUMBER from the chain and the store alone and compare."""
    from flb_dapp.audit import verify_round
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import DeploymentRecord
    from flb_dapp.chain.network import connect
    from flb_dapp.storage.factory import open_store
    from flb_dapp.taskspec import make_evaluator

    with connect(settings.network):
        record = DeploymentRecord.load(settings.deployment)
        scorer = make_evaluator(settings.task, settings.cache_dir)
        result = verify_round(
            Coordinator(record.coordinator),
            open_store(settings.store),
            round_number,
            scorer,
            start_block=record.block,
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


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FLBError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
