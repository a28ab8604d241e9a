"""Entry point of the ``flb`` console script: one click group, subcommands registered lazily.

Subcommands live one per module (``flb_dapp/cli/<name>_cmd.py``) and are imported only when
invoked, so ``flb --help`` stays fast despite the heavy ML and chain stacks.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
import warnings

import click

from flb_dapp import __version__
from flb_dapp.cli.context import CLIContext
from flb_dapp.exceptions import FLBError

# name -> ("module:attribute" of the click command, one-line help shown by `flb --help`)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "account": ("flb_dapp.cli.account_cmd:account", "Create, import and list encrypted accounts."),
    "admit": ("flb_dapp.cli.admission_cmd:admit", "Admit addresses to an allowlist federation (registrars)."),
    "balance": ("flb_dapp.cli.balance_cmd:balance", "Show an account's ETH and reward-token balances."),
    "chat": ("flb_dapp.cli.chat_cmd:chat", "Chat with the base model plus the current global adapter."),
    "cid": ("flb_dapp.cli.cid_cmd:cid", "Print a file's IPFS CID without storing it."),
    "simulate": (
        "flb_dapp.cli.simulate_cmd:simulate",
        "Run a whole federation in one process (embedded chain).",
    ),
    "claim": ("flb_dapp.cli.claim_cmd:claim", "Claim the rewards earned so far (one claim pays all rounds)."),
    "config": ("flb_dapp.cli.config_cmd:config", "Show the effective settings and where each comes from."),
    "devnet": (
        "flb_dapp.cli.devnet_cmd:devnet",
        "Run anvil, IPFS, the oracle and the API as local processes.",
    ),
    "exit": (
        "flb_dapp.cli.admission_cmd:exit_federation",
        "Leave the federation; later, take your bond back.",
    ),
    "eval": ("flb_dapp.cli.eval_cmd:evaluate", "Multiple-choice accuracy of a model (+ adapter)."),
    "participate": ("flb_dapp.cli.participate_cmd:participate", "Pull, train and submit for the open round."),
    "pull": ("flb_dapp.cli.pull_cmd:pull", "Download a global adapter; optionally merge it into the model."),
    "register": ("flb_dapp.cli.register_cmd:register", "Commit to your dataset and join the federation."),
    "status": ("flb_dapp.cli.status_cmd:status", "Round, deadline, your submissions, rewards, global model."),
    "submit": (
        "flb_dapp.cli.submit_cmd:submit",
        "Store a trained adapter and commit to it for the open round.",
    ),
    "reveal": (
        "flb_dapp.cli.reveal_cmd:reveal",
        "Reveal your committed update once the commit phase closed.",
    ),
    "train": ("flb_dapp.cli.train_cmd:train", "Fine-tune the current global adapter on your local data."),
}

# Set by the group's callback so main() knows whether to print tracebacks.
_VERBOSE = False


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
@click.option(
    "--config",
    "-c",
    "config_path",
    metavar="FILE",
    envvar="FLB_CONFIG",
    help="Settings file (default: ./flb.yaml, or $FLB_CONFIG).",
)
@click.option(
    "--network",
    "-n",
    metavar="CHOICE_OR_URL",
    help="Ape network choice (ethereum:local:test) or node URL; overrides flb.yaml.",
)
@click.option("--json", "json_mode", is_flag=True, help="Print results as JSON on stdout (for scripts).")
@click.option("--verbose", "-v", is_flag=True, help="Say more: Ape's own logs, tracebacks on errors.")
@click.option("--quiet", "-q", is_flag=True, help="Print results and errors only.")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    network: str | None,
    json_mode: bool,
    verbose: bool,
    quiet: bool,
) -> None:
    """FLB: federated LoRA fine-tuning with a public, auditable ledger.

    \b
    A client's path:
      flb account new alice          make an encrypted wallet
      flb register --data ./mydata   commit to your dataset on chain
      flb participate                pull the global model, train, commit; reveal on the next run
      flb status                     round, deadline, rewards
      flb claim                      collect your reward tokens
      flb pull --merge ./model       a ready-to-use model folder
    """
    global _VERBOSE
    _VERBOSE = verbose
    ctx.obj = CLIContext(
        config_path=config_path, network=network, json_mode=json_mode, quiet=quiet, verbose=verbose
    )


def _quiet_libraries() -> None:
    """Silence the ML stack's import-time chatter unless --verbose (only for the console script:
    in-process callers keep their own logging and warnings setup)."""
    if "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]:
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # NOTE: trl tokenizes through `datasets`, whose own bars would garble the training bar.
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for name in ("bitsandbytes", "datasets", "peft", "trl", "accelerate", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _color() -> bool | None:
    return False if os.environ.get("NO_COLOR") else None


def run(args: list[str] | None = None) -> int:
    """Run `flb` with ``args`` (default: sys.argv) and return the exit status; errors are printed
    as ``Error: ...`` on stderr. Tests call this in-process; :func:`main` is the console script."""
    global _VERBOSE
    _VERBOSE = False
    try:
        code = cli.main(args=args, prog_name="flb", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except FLBError as exc:
        if _VERBOSE:
            traceback.print_exc()
        click.secho(f"Error: {exc}", fg="red", err=True, color=_color())
        return exc.exit_code
    except Exception as exc:
        if _VERBOSE:
            traceback.print_exc()
        click.secho(f"Error: {type(exc).__name__}: {exc}", fg="red", err=True, color=_color())
        if not _VERBOSE:
            click.echo("(run again with --verbose to see the traceback)", err=True)
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    _quiet_libraries()
    sys.exit(run())


if __name__ == "__main__":
    main()
