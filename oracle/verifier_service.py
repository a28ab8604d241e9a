"""`flb-verifier`: a bonded verifier of an FLB settlement, as a service (APScheduler) or once.

It reads the same settings file as the oracle (network, deployment, store, the ``oracle`` section's
round rules, which are the federation's published rules) with its own ``account``: an encrypted
Ape account unlocked with the password from ``password_file`` or ``password_env``, never a key in
plain text. ``flb-verifier register --bond N`` posts the bond once the admin granted the
account the verifier role; ``run`` then checks every interval.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

import click

from oracle.__main__ import _resolve, _settings, configure_logging, main_guard, settings_options
from oracle.verifier import Verifier

log = logging.getLogger("flb.verifier")


@contextmanager
def open_verifier(settings: Any) -> Iterator[Verifier]:
    """Connect, load the deployment (it must name a settlement), unlock the verifier's account."""
    from flb_dapp.chain.accounts import load_account
    from flb_dapp.chain.coordinator import Coordinator
    from flb_dapp.chain.deployment import DeploymentRecord
    from flb_dapp.chain.network import connect
    from flb_dapp.chain.settlement import Settlement
    from flb_dapp.exceptions import ConfigError
    from flb_dapp.storage.factory import open_store
    from oracle.service import oracle_password

    if settings.oracle.torch_threads:
        import torch

        torch.set_num_threads(settings.oracle.torch_threads)
    with connect(settings.network):
        record = DeploymentRecord.load(settings.deployment)
        if not record.settlement:
            raise ConfigError(f"the deployment {settings.deployment} has no settlement: nothing to verify")
        yield Verifier(
            settings,
            account=load_account(settings.account or "test:0", oracle_password(settings)),
            coordinator=Coordinator(record.coordinator, record.block),
            settlement=Settlement(record.settlement, record.block),
            store=open_store(settings.store),
            start_block=record.block,
        )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", default=None, help="YAML settings file (default: flb.yaml or $FLB_CONFIG).")
@click.option("--network", default=None, help="Ape network choice or node RPC URI (overrides the file).")
@click.option("-v", "--verbose", is_flag=True, help="Log every check.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, network: str | None, verbose: bool) -> None:
    """The FLB verifier: recomputes proposed rounds, attests or challenges them."""
    configure_logging(verbose)
    ctx.obj = _settings(config, network)


@cli.command()
@click.option("--bond", type=click.IntRange(min=0), required=True, help="Reward-token units to bond.")
@settings_options
@click.pass_context
def register(ctx: click.Context, bond: int, sub_config: str | None, sub_network: str | None) -> None:
    """Join the verifier set with BOND tokens (the admin must have granted VERIFIER_ROLE)."""
    with open_verifier(_resolve(ctx, sub_config, sub_network)) as verifier:
        verifier.settlement.register_verifier(verifier.account, bond)
        info = verifier.settlement.bond(verifier.account.address)
    click.echo(f"verifier {info.address}: index {info.verifier_index}, bond {info.amount}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the actions as JSON.")
@settings_options
@click.pass_context
def once(ctx: click.Context, as_json: bool, sub_config: str | None, sub_network: str | None) -> None:
    """Check every open proposal now, then exit."""
    from flb_dapp.cli.session import ape_logging

    # NOTE: Ape logs each confirmed transaction on stdout: --json must print JSON only.
    with ape_logging(not as_json), open_verifier(_resolve(ctx, sub_config, sub_network)) as verifier:
        actions = [asdict(a) for a in verifier.run_once()]
    if as_json:
        click.echo(json.dumps(actions, indent=2))
    for action in [] if as_json else actions:
        click.echo(f"round {action['round']}: {action['action']} {action['reason'] or action['result_hash']}")
    if not actions and not as_json:
        click.echo("no proposal to check")


@cli.command()
@click.option("--interval", type=float, default=None, help="Seconds between checks [oracle.interval_s].")
@settings_options
@click.pass_context
def run(ctx: click.Context, interval: float | None, sub_config: str | None, sub_network: str | None) -> None:
    """Run the service: check the open proposals every interval."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    settings = _resolve(ctx, sub_config, sub_network)
    with open_verifier(settings) as verifier:
        scheduler = BlockingScheduler()
        scheduler.add_job(
            verifier.tick,
            "interval",
            seconds=interval or settings.oracle.interval_s,
            max_instances=1,
            coalesce=True,
            next_run_time=dt.datetime.now(),
        )
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
        log.info("verifier %s running for %s", verifier.account.address, verifier.settlement.address)
        scheduler.start()


def main() -> None:
    main_guard(cli)


if __name__ == "__main__":
    main()
