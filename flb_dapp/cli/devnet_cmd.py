"""`flb devnet up | down | status`: a local FLB network as separate processes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import as_json_option, verbose_option

DEFAULT_FOLDER = Path(".flb/devnet")
FOLDER = click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_FOLDER,
    show_default=True,
    help="Folder for logs, pid files and state (relative: to the current directory).",
)


@click.group("devnet")
def devnet() -> None:
    """Run anvil, IPFS, the oracle and the REST API locally as separate processes."""


@devnet.command("up")
@FOLDER
@click.option("--round-duration", default=300, show_default=True, help="Seconds each round stays open.")
@click.option("--clients", default=2, show_default=True, help="Client data shares to prepare.")
@click.option("--steps", default=30, show_default=True, help="Local training steps per round.")
@click.option("--api-port", type=int, default=None, help="Port of the REST API (default: a free one).")
@click.option("--no-ipfs", is_flag=True, help="Use a local store folder instead of the IPFS node.")
@as_json_option("Print the devnet's URLs and commands as JSON.")
@verbose_option
@pass_cli
def up(
    cli: CLIContext,
    folder: Path,
    round_duration: int,
    clients: int,
    steps: int,
    api_port: int | None,
    no_ipfs: bool,
    as_json: bool,
) -> None:
    """Start the devnet and print its URLs and the commands a client runs next."""
    from flb_dapp import devnet as net
    from flb_dapp.cli.session import ape_logging

    try:
        # NOTE: deploying logs each transaction through Ape; the summary below is what users need.
        with ape_logging(cli.verbose):
            info = net.up(
                folder,
                round_duration=round_duration,
                clients=clients,
                steps=steps,
                api_port=api_port,
                use_ipfs=not no_ipfs,
            )
    except BaseException:
        net.Devnet(folder).down()
        raise
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.secho("FLB devnet is up", fg="green", bold=True)
    for name, url in info["urls"].items():
        click.echo(f"  {name:<7} {url}")
    click.echo(f"  contract {info['contract']}")
    click.echo(f"  config  {info['config']}   (operator tokens in {Path(info['folder']) / 'tokens.env'})")
    # NOTE: every client registers before any participates: the commit phase closes once every
    # registered client has committed, so a client alone when it commits has the round to itself.
    click.echo("\nRegister every client, then let each participate (run participate again to reveal):")
    for client in info["clients"]:
        click.echo(f"  {client['register']}")
    for client in info["clients"]:
        click.echo(f"  {client['participate']}")
    where = "" if folder == DEFAULT_FOLDER else f" --dir {folder}"
    stop = f"{net.flb_executable()} devnet down{where}"
    click.echo(f"\nDashboard: {info['urls']['api']}/   Stop everything: {stop}")


@devnet.command("status")
@FOLDER
@as_json_option("Print as JSON.")
def status(folder: Path, as_json: bool) -> None:
    """Show which devnet processes run."""
    from flb_dapp.devnet import Devnet

    state = Devnet(folder).status()
    if as_json:
        click.echo(json.dumps(state, indent=2))
        return
    if not state:
        click.echo(f"no devnet in {folder}")
    for name, item in state.items():
        flag = click.style("running", fg="green") if item["running"] else click.style("stopped", fg="red")
        click.echo(f"{name:<7} pid {item['pid']:<8} {flag}  {item['url']}  log {item['log']}")


@devnet.command("down")
@FOLDER
def down(folder: Path) -> None:
    """Stop exactly the processes `devnet up` started."""
    from flb_dapp.devnet import Devnet

    stopped = Devnet(folder).down()
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else f"nothing to stop in {folder}")
