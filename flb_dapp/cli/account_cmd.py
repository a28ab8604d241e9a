"""``flb account new | import | list``: encrypted keystores in Ape's data folder.

A key is never taken from the command line (it would land in shell history and ``ps``): ``import``
reads it from a hidden prompt, or from the first line of stdin when stdin is not a terminal.
"""

from __future__ import annotations

import sys

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, password_file_option
from flb_dapp.exceptions import WalletError

_FOLDER_NOTE = "Keystores live in Ape's data folder: $APE_DATA_FOLDER/accounts (default ~/.ape/accounts)."


_new_password_file_option = password_file_option(
    "File whose first line is the new password (else $FLB_PASSWORD, else typed twice)."
)


@click.group("account", help=f"Create, import and list encrypted accounts.\n\n{_FOLDER_NOTE}")
def account() -> None:
    pass


@account.command("new")
@click.argument("alias")
@_new_password_file_option
@click.option(
    "--show-mnemonic", is_flag=True, help="Print the new account's recovery phrase (on stderr) to write down."
)
@json_option
@pass_cli
def new(cli: CLIContext, alias: str, show_mnemonic: bool) -> None:
    """Generate a new account ALIAS, encrypted with a password."""
    from flb_dapp.wallet import check_alias, create_account

    out = cli.output
    check_alias(alias)  # before asking for a password
    password = cli.new_password(alias)
    created, mnemonic = create_account(alias, password)
    if show_mnemonic:
        click.echo(f"Recovery phrase (write it down, keep it secret):\n  {mnemonic}", err=True)
    out.success(f"Created account {alias!r}: {created.address}")
    out.note(f"Keystore: {created.path}. Fund the address with ETH for gas before `flb register`.")
    out.result(
        {"alias": created.alias, "address": created.address, "keystore": str(created.path)},
        lambda: out.line(created.address),
    )


@account.command("import")
@click.argument("alias")
@_new_password_file_option
@click.option(
    "--mnemonic", "use_mnemonic", is_flag=True, help="Read a recovery phrase instead of a private key."
)
@click.option(
    "--hd-path", default="m/44'/60'/0'/0/0", show_default=True, help="Derivation path for --mnemonic."
)
@json_option
@pass_cli
def import_(cli: CLIContext, alias: str, use_mnemonic: bool, hd_path: str) -> None:
    """Import an existing key as ALIAS; the key is read from a hidden prompt or stdin, never argv."""
    from flb_dapp.wallet import check_alias, import_mnemonic, import_private_key

    out = cli.output
    check_alias(alias)
    what = "recovery phrase" if use_mnemonic else "private key"
    if sys.stdin.isatty():
        secret = str(click.prompt(f"Paste the {what}", hide_input=True))
    else:
        secret = sys.stdin.readline().strip()
        if not secret:
            raise WalletError(f"no {what} on stdin")
    password = cli.new_password(alias)
    if use_mnemonic:
        imported = import_mnemonic(alias, password, secret, hd_path)
    else:
        imported = import_private_key(alias, password, secret)
    out.success(f"Imported account {alias!r}: {imported.address}")
    out.result(
        {"alias": imported.alias, "address": imported.address, "keystore": str(imported.path)},
        lambda: out.line(imported.address),
    )


@account.command("list")
@json_option
@pass_cli
def list_(cli: CLIContext) -> None:
    """List the encrypted accounts (alias and address); nothing is unlocked."""
    from flb_dapp.wallet import keystore_folder, list_accounts

    out = cli.output
    accounts = list_accounts()

    def human() -> None:
        if not accounts:
            out.note(f"No accounts in {keystore_folder()}; make one with `flb account new ALIAS`.")
            return
        out.table(["alias", "address"], [(a.alias, a.address) for a in accounts])

    out.result(
        {
            "folder": str(keystore_folder()),
            "accounts": [{"alias": a.alias, "address": a.address} for a in accounts],
        },
        human,
    )
