"""``flb register --data PATH``: commit to a dataset and register the account on chain."""

from __future__ import annotations

from pathlib import Path

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import data_option, json_option, signer_options
from flb_dapp.cli.training import data_path

BAR_FROM_BYTES = 64 << 20  # smaller data hashes in well under a second: no bar


@click.command("register")
@data_option("Your training data: a file or a folder (default: `data` in flb.yaml).")
@click.option("--dry-run", is_flag=True, help="Compute and show the commitment; send nothing.")
@signer_options
@json_option
@pass_cli
def register(cli: CLIContext, data: Path | None, dry_run: bool) -> None:
    """Commit to your dataset (sha256 of its manifest) and register on the coordinator.

    The commitment binds you to your data without revealing it: sorted relative paths, sizes and
    sha256 of every data file. The same data cannot be registered by two accounts.
    """
    from flb_dapp.dataset import commit_dataset, data_files

    cli.use(data=str(data) if data else None)
    out = cli.output
    settings = cli.settings
    path = data_path(settings)
    _, files = data_files(path)  # a missing path fails here, before any output
    total = sum(full.stat().st_size for _, full in files)
    if total < BAR_FROM_BYTES:
        commitment = commit_dataset(path)
    else:
        with out.progress("Hashing data", total=total, unit="bytes") as bar:
            commitment = commit_dataset(path, progress=lambda done, _total: bar.update(done))
    size = f"{len(commitment.entries)} file(s), {commitment.total_bytes:,} bytes"
    out.note(f"Dataset {commitment.root}: {size}")
    out.note(f"Commitment {commitment.hex}")
    result = {
        "data": str(commitment.root),
        "files": len(commitment.entries),
        "bytes": commitment.total_bytes,
        "commitment": commitment.hex,
        "registered": False,
    }
    if dry_run:
        out.result(result, lambda: out.line(commitment.hex))
        return

    from flb_dapp.cli.session import chain_session, check_gas_funds, send
    from flb_dapp.wallet import account_address, unlock_account

    name = cli.account_name()
    address = account_address(name)
    with chain_session(settings, cli.verbose) as session:
        # Pre-flight before the password prompt: nobody should type a password to learn a rule.
        session.coordinator.check_can_register(address, commitment.digest)
        session.coordinator.check_admission(address)
        check_gas_funds(session, address)
        account = unlock_account(name, cli.password(name))
        receipt = send(
            out,
            session,
            account,
            "register",
            lambda: session.coordinator.register(account, commitment.digest),
        )
    result.update(
        registered=True, account=address, transaction=str(receipt.txn_hash), block=int(receipt.block_number)
    )
    out.result(result, lambda: out.line(f"registered {address} with commitment {commitment.hex}"))
