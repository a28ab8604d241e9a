"""``flb claim``: fetch the Merkle proof from the latest round report and claim the reward tokens."""

from __future__ import annotations

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, signer_options, store_option
from flb_dapp.cli.output import format_units


@click.command("claim")
@signer_options
@store_option
@json_option
@pass_cli
def claim(cli: CLIContext) -> None:
    """Claim your rewards: the cumulative amount and its proof come from the latest round report,
    the contract pays the difference to what you already claimed. Exits 0 when there is nothing to
    claim."""
    from flb_dapp.cli.artifacts import open_store
    from flb_dapp.cli.rewards_view import latest_report
    from flb_dapp.cli.session import chain_session, check_gas_funds, send
    from flb_dapp.wallet import account_address, unlock_account

    out, settings = cli.output, cli.settings
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        symbol, decimals = session.token_units()
        report = latest_report(sdk, open_store(settings.store))
        earned = report.earned(address) if report else 0
        claimed = sdk.client(address).claimed
        base = {
            "account": address,
            "earned": earned,
            "claimed_before": claimed,
            "symbol": symbol,
            "report_round": report.round if report else None,
        }
        if earned <= claimed:
            why = (
                "no round has been finalized yet"
                if report is None
                else f"nothing to claim: earned {format_units(earned, decimals)} {symbol}, "
                f"all of it already claimed"
            )
            out.result({**base, "paid": 0, "reason": why}, lambda: out.line(why))
            return
        proof = report.proof(address) if report else []
        # The SDK checks the proof against the on-chain root before the password is even asked.
        sdk.check_can_claim(address, earned, proof)
        check_gas_funds(session, address)
        account = unlock_account(name, cli.password(name))
        before = sdk.token_balance(address)
        receipt = send(out, session, account, "claim", lambda: sdk.claim(account, earned, proof))
        paid = sdk.token_balance(address) - before
    result = {**base, "paid": paid, "transaction": str(receipt.txn_hash), "block": int(receipt.block_number)}
    out.result(result, lambda: out.line(f"claimed {format_units(paid, decimals)} {symbol}"))
