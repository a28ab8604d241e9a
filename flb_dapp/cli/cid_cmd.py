"""``flb cid FILE``: print a file's IPFS CID without storing it (``ipfs add --only-hash``)."""

from __future__ import annotations

from pathlib import Path

import click

from flb_dapp.storage.cid import cid_of_file


@click.command("cid")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path))
@click.option("--v0", "v0", is_flag=True, help="Print the CIDv0 (Qm..., dag-pb leaves) instead of the CIDv1.")
def cid(file: Path, v0: bool) -> None:
    """Print the CID that `ipfs add --cid-version=1` gives FILE (256 KiB chunks, raw leaves)."""
    click.echo(cid_of_file(file, cid_version=0 if v0 else 1))
