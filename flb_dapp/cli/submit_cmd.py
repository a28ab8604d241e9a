"""``flb submit [ADAPTER]``: store a trained adapter and submit its CID for the open round."""

from __future__ import annotations

from pathlib import Path

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, signer_options, store_option, upload_option
from flb_dapp.exceptions import ConfigError


@click.command("submit")
@click.argument("adapter", required=False, type=click.Path(path_type=Path))
@signer_options
@store_option
@upload_option
@json_option
@pass_cli
def submit(cli: CLIContext, adapter: Path | None) -> None:
    """Store ADAPTER (default: the one `flb train` saved for the open round) and commit to it.

    The contract's rules (commit phase open, you registered, not yet committed) and the adapter (its
    round, client and base model) are checked first: nothing is stored or sent when it would be
    refused. The CID stays hidden behind the commitment until the commit phase closes; then run
    `flb reveal` (this command reveals at once when its commit was the last one).
    """
    from flb_dapp.cli.artifacts import read_adapter_file
    from flb_dapp.cli.session import chain_session, check_gas_funds
    from flb_dapp.cli.submission import check_adapter, submit_adapter
    from flb_dapp.cli.training import default_update_path
    from flb_dapp.lora.codec import encode_adapter
    from flb_dapp.taskspec import base_model_name
    from flb_dapp.wallet import account_address, unlock_account

    out, settings = cli.output, cli.settings
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        current = sdk.current_round
        sdk.check_can_commit(address, current, 1)
        path = adapter or default_update_path(settings, current, address)
        if not path.exists():
            raise ConfigError(f"no adapter at {path}; train one with `flb train` (or pass its path)")
        update = read_adapter_file(path)
        check_adapter(update, address, current, base_model_name(settings.task))
        check_gas_funds(session, address)
        account = unlock_account(name, cli.password(name))
        done = submit_adapter(out, settings, session, account, update, encode_adapter(update))
    data = {
        "round": done.round,
        "cid": done.cid,
        "num_samples": done.num_samples,
        "transaction": done.transaction,
        "block": done.block,
        "stored_via": done.stored_via,
        "adapter": str(path),
        "revealed": done.revealed,
        "reveal_transaction": done.reveal_transaction or None,
    }
    verb = "submitted" if done.revealed else "committed to"
    out.result(data, lambda: out.line(f"{verb} {done.cid} for round {done.round}"))
