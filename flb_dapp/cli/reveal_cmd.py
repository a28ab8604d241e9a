"""``flb reveal``: reveal the update you committed to in the open round, once its commit phase closed."""

from __future__ import annotations

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, signer_options


@click.command("reveal")
@signer_options
@json_option
@pass_cli
def reveal(cli: CLIContext) -> None:
    """Reveal the commitment `flb submit` saved for the open round.

    Reveals open when the commit phase closes (its deadline, or earlier once every active client
    committed) and close `reveal_duration` seconds later; an update never revealed earns nothing.
    """
    from flb_dapp.cli.session import chain_session
    from flb_dapp.cli.submission import reveal_saved
    from flb_dapp.wallet import account_address, unlock_account

    out, settings = cli.output, cli.settings
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        pending, transaction = reveal_saved(
            out, settings, session, address, lambda: unlock_account(name, cli.password(name))
        )
    data = {
        "round": pending.round,
        "cid": pending.cid,
        "num_samples": pending.num_samples,
        "transaction": transaction,
    }
    out.result(data, lambda: out.line(f"revealed {pending.cid} for round {pending.round}"))
