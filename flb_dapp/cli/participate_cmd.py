"""``flb participate``: pull + train + commit for the open round, and reveal on a later run, in one
cron-friendly command.

Each run does the one thing the round needs from you now: in the commit phase, train and commit;
in the reveal window, reveal what you committed. Exit status 0 also when there is nothing to do
(already revealed this round, waiting for the commit phase to close, round waiting for the oracle,
coordinator paused), with a message saying so; errors that need a person (not registered, wrong
password, no data) exit non-zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import (
    data_option,
    json_option,
    signer_options,
    store_option,
    train_options,
    upload_option,
)
from flb_dapp.exceptions import CoordinatorNotRegistered


@click.command("participate")
@data_option("Training data: a file or a folder (default: `data` in flb.yaml).")
@train_options
@signer_options
@store_option
@upload_option
@json_option
@pass_cli
def participate(cli: CLIContext, data: Path | None, **kwargs: Any) -> None:
    """Take part in the open round: fetch the global model, train on your data, commit the update;
    on a run in the reveal window, reveal it.

    Run it from cron (every few minutes, so a reveal lands within the reveal window): it does
    nothing (exit 0) once you have revealed in the open round.
    """
    from flb_dapp.cli.session import chain_session, check_gas_funds
    from flb_dapp.cli.submission import reveal_saved, submit_adapter
    from flb_dapp.cli.train_cmd import RoundStart, train_update
    from flb_dapp.cli.training import data_path, default_update_path, save_update
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
            raise CoordinatorNotRegistered(
                f"{address} is not registered; run `flb register --data PATH` first", client=address
            )
        phase = sdk.round_phase(current)
        if client.committed_round == current and client.last_submitted_round != current and phase == "reveal":
            pending, transaction = reveal_saved(
                out, settings, session, address, lambda: unlock_account(name, cli.password(name))
            )
            revealed = {"round": current, "submitted": True, "revealed": True, "cid": pending.cid}
            revealed["transaction"] = transaction
            out.result(revealed, lambda: out.line(f"revealed {pending.cid} for round {current}"))
            return
        idle = _nothing_to_do(sdk, client, current, phase)
        if idle:
            out.result({"round": current, "submitted": False, "reason": idle}, lambda: out.line(idle))
            return
        check_gas_funds(session, address)
        start = RoundStart(current, sdk.latest_global_model_cid, True)
    # Unlock before training: a wrong password should cost seconds, not a training run.
    account = unlock_account(name, cli.password(name))
    result, encoded = train_update(cli, start, address, kwargs, path)
    saved = save_update(default_update_path(settings, start.round, address), encoded)
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
        "revealed": done.revealed,
        "metrics": {k: round(float(v), 6) for k, v in result.metrics.items()},
    }
    verb = "submitted" if done.revealed else "committed to"
    tail = "" if done.revealed else "; run again once the commit phase closed to reveal it"
    out.result(data_out, lambda: out.line(f"{verb} {done.cid} for round {done.round}{tail}"))


def _nothing_to_do(sdk: Any, client: Any, current: int, phase: str) -> str:
    """Why there is nothing to do this round ('' if there is work)."""
    if client.last_submitted_round == current:
        return f"already submitted in round {current}; nothing to do until round {current + 1} opens"
    if sdk.paused:
        return "the coordinator is paused; nothing to do"
    if client.committed_round == current and phase == "commit":
        deadline = sdk.round(current).deadline
        return (
            f"committed in round {current}; reveal opens when the commit phase closes (block time {deadline})"
        )
    if phase != "commit":
        return f"round {current} is closed and waits for the oracle; nothing to do until round {current + 1}"
    return ""
