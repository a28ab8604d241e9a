"""``flb admit`` (a registrar admits addresses on an allowlist federation) and ``flb exit`` (a
client leaves and, after the deployment's exit delay, takes its registration bond back)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from eth_utils import is_address, to_checksum_address

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, signer_options
from flb_dapp.cli.output import format_units


def _address(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    bad = [value for value in values if not is_address(value)]
    if bad:
        raise click.BadParameter(f"not an address: {', '.join(bad)}")
    return tuple(to_checksum_address(value) for value in values)


@click.command("admit")
@click.argument("addresses", nargs=-1, required=True, callback=_address)
@click.option("--revoke", is_flag=True, help="Revoke the admission instead (before the address registers).")
@signer_options
@json_option
@pass_cli
def admit(cli: CLIContext, addresses: tuple[str, ...], revoke: bool) -> None:
    """Admit ADDRESSES to an allowlist federation (your account needs the registrar role). An
    admitted address may then `flb register`; to remove a registered client, the admin bans it."""
    from flb_dapp.chain.admission_errors import CoordinatorAdmissionOpen
    from flb_dapp.cli.session import chain_session, check_gas_funds, send
    from flb_dapp.exceptions import AccessControlUnauthorizedAccount
    from flb_dapp.wallet import account_address, unlock_account

    out, settings = cli.output, cli.settings
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        if sdk.admission_rules.mode == "open":
            raise CoordinatorAdmissionOpen("this federation is open: anyone may register, nobody is admitted")
        if not sdk.is_registrar(address):
            raise AccessControlUnauthorizedAccount(
                f"{address} does not hold the registrar role; the admin grants it",
                account=address,
                needed_role=bytes(sdk.contract.REGISTRAR_ROLE()),
            )
        check_gas_funds(session, address)
        account = unlock_account(name, cli.password(name))
        for client in addresses:
            send(out, session, account, "admit", _admission(sdk, account, client, not revoke))
        admitted = {client: sdk.is_admitted(client) for client in addresses}
    verb = "revoked" if revoke else "admitted"

    def human() -> None:
        for client in addresses:
            out.line(f"{verb} {client}")

    out.result({"registrar": address, "admitted": admitted}, human)


def _admission(sdk: Any, account: Any, client: str, admitted: bool) -> Callable[[], Any]:
    return lambda: sdk.set_admitted(account, client, admitted)


@click.command("exit")
@click.option("--withdraw", is_flag=True, help="Take the bond back (once the exit delay has passed).")
@signer_options
@json_option
@pass_cli
def exit_federation(cli: CLIContext, withdraw: bool) -> None:
    """Leave the federation: you stop training and your bond is released after the exit delay
    (`flb exit --withdraw` then pays it back). Rewards earned stay claimable."""
    from flb_dapp.cli.session import chain_session, check_gas_funds, send
    from flb_dapp.wallet import account_address, unlock_account

    out, settings = cli.output, cli.settings
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        symbol, decimals = session.token_units()
        # Pre-flight before the password prompt: nobody should type a password to learn a rule.
        if withdraw:
            sdk.check_can_withdraw_bond(address)
        else:
            sdk.check_can_exit(address)
        check_gas_funds(session, address)
        account = unlock_account(name, cli.password(name))
        bond = sdk.bond_of(address)
        if withdraw:
            send(out, session, account, "withdraw bond", lambda: sdk.withdraw_bond(account))
        else:
            send(out, session, account, "exit", lambda: sdk.request_exit(account))
            bond = sdk.bond_of(address)
    amount = format_units(bond.amount, decimals)
    result = {"account": address, "bond": bond.amount, "released_at": bond.released_at, "withdrawn": withdraw}
    if withdraw:
        out.result(result, lambda: out.line(f"bond of {amount} {symbol} returned to {address}"))
    else:
        out.result(
            result,
            lambda: out.line(
                f"{address} exited; its bond of {amount} {symbol} is released at {bond.released_at}"
            ),
        )
