"""``flb participate``: pull + train + submit for the open round, in one cron-friendly command.

Exit status 0 also when there is nothing to do (already submitted this round, round closed and
waiting for the oracle, coordinator paused), with a message saying so; errors that need a person
(not registered, wrong password, no data) exit non-zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, json_option, pass_cli, signer_options, store_option
from flb_dapp.cli.submit_cmd import upload_option
from flb_dapp.cli.training import train_options
from flb_dapp.exceptions import PreflightError


@click.command("participate")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Training data: a file or a folder (default: `data` in flb.yaml).",
)
@train_options
@signer_options
@store_option
@upload_option
@json_option
@pass_cli
def participate(cli: CLIContext, data: Path | None, **kwargs: Any) -> None:
    """Take part in the open round: fetch the global model, train on your data, submit the update.

    Run it from cron: it does nothing (exit 0) once you have submitted in the open round.
    """
    from flb_dapp.cli.artifacts import write_atomic
    from flb_dapp.cli.session import chain_session, check_gas_funds
    from flb_dapp.cli.submission import submit_adapter
    from flb_dapp.cli.train_cmd import RoundStart, train_update
    from flb_dapp.cli.training import data_path, default_update_path
    from flb_dapp.dataset import data_files
    from flb_dapp.lora.codec import decode_adapter
    from flb_dapp.wallet import account_address, unlock_account

    cli.use(data=str(data) if data else None)
    out, settings = cli.output, cli.settings
    path = data_path(settings)
    data_files(path)  # a missing data set fails before anything else (cheap: no ML imports)
    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        current = sdk.current_round
        client = sdk.client(address)
        if not client.registered:
            raise PreflightError(f"{address} is not registered; run `flb register --data PATH` first")
        idle = _nothing_to_do(sdk, client, current)
        if idle:
            out.result({"round": current, "submitted": False, "reason": idle}, lambda: out.line(idle))
            return
        check_gas_funds(session, address)
        start = RoundStart(current, sdk.latest_global_model_cid, True)
    # Unlock before training: a wrong password should cost seconds, not a training run.
    account = unlock_account(name, cli.password(name))
    result, encoded = train_update(cli, start, address, kwargs, path)
    saved = write_atomic(default_update_path(settings, start.round, address), encoded)
    out.note(f"Saved the update to {saved}")
    with chain_session(settings, cli.verbose) as session:
        done = submit_adapter(out, settings, session, account, decode_adapter(encoded), encoded)
    data_out = {
        "round": done.round,
        "submitted": True,
        "cid": done.cid,
        "num_samples": done.num_samples,
        "transaction": done.transaction,
        "block": done.block,
        "adapter": str(saved),
        "stored_via": done.stored_via,
        "metrics": {k: round(float(v), 6) for k, v in result.metrics.items()},
    }
    out.result(data_out, lambda: out.line(f"submitted {done.cid} for round {done.round}"))


def _nothing_to_do(sdk: Any, client: Any, current: int) -> str:
    """Why there is nothing to do this round ('' if there is work)."""
    if client.last_submitted_round == current:
        return f"already submitted in round {current}; nothing to do until round {current + 1} opens"
    if sdk.paused:
        return "the coordinator is paused; nothing to do"
    if sdk.now() >= sdk.round(current).deadline:
        return f"round {current} is closed and waits for the oracle; nothing to do until round {current + 1}"
    return ""
