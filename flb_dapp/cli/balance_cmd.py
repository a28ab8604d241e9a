"""``flb balance``: an account's ETH (for gas) and reward tokens."""

from __future__ import annotations

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import account_option, json_option
from flb_dapp.cli.output import format_units


@click.command("balance")
@account_option
@json_option
@pass_cli
def balance(cli: CLIContext) -> None:
    """Show the account's ETH balance and its reward-token balance (amounts in whole units)."""
    from flb_dapp.cli.session import chain_session
    from flb_dapp.wallet import account_address

    out = cli.output
    address = account_address(cli.account_name())
    with chain_session(cli.settings, cli.verbose) as session:
        token = session.coordinator.token
        symbol, decimals = session.token_units()
        eth = session.eth_balance(address)
        tokens = session.coordinator.token_balance(address)
    data = {
        "address": address,
        "eth": eth,
        "token": tokens,
        "token_symbol": symbol,
        "token_decimals": decimals,
        "token_address": str(token.address),
    }
    out.result(
        data,
        lambda: out.fields(
            {
                "account": address,
                "ETH": format_units(eth),
                symbol: format_units(tokens, decimals),
            }
        ),
    )
