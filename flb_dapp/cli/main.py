"""Entry point of the ``flb`` console script: one click group, subcommands registered lazily.

Subcommands live one per module (``flb_dapp/cli/<name>_cmd.py``) and are imported only when
invoked, so ``flb --help`` stays fast despite the heavy ML and chain stacks.
"""

from __future__ import annotations

import importlib
import sys

import click

from flb_dapp import __version__
from flb_dapp.exceptions import FLBError

# name -> "module:attribute" of the click command
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "cid": ("flb_dapp.cli.cid_cmd:cid", "Print a file's IPFS CID without storing it."),
}


class LazyGroup(click.Group):
    """A click group that imports a subcommand's module only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(SUBCOMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module_name, attribute = SUBCOMMANDS[cmd_name][0].split(":")
            command = getattr(importlib.import_module(module_name), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # NOTE: short help comes from the table, so listing commands imports nothing heavy.
        rows = [(name, SUBCOMMANDS[name][1]) for name in sorted(SUBCOMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="flb")
def cli() -> None:
    """FLB: federated LoRA fine-tuning with a public, auditable ledger."""


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FLBError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
