"""``flb pull``: download a global adapter, verify it, export a PEFT folder, optionally merge it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import json_option, store_option
from flb_dapp.exceptions import PreflightError


@dataclass(frozen=True)
class GlobalRef:
    """Which global adapter: its CID and the round that produced it (0: the initial model)."""

    cid: str
    round: int | None
    contract: str | None = None
    chain_id: int | None = None


def resolve_global(cli: CLIContext, round_number: int | None) -> GlobalRef:
    """The latest global adapter, or round N's, as recorded on chain."""
    from flb_dapp.cli.session import chain_session

    with chain_session(cli.settings, cli.verbose) as session:
        sdk = session.coordinator
        last = sdk.current_round - 1
        if round_number is None:
            ref = GlobalRef(sdk.latest_global_model_cid, max(last, 0))
        elif round_number == 0:
            ref = GlobalRef(session.record.initial_model_cid, 0)
        elif round_number > last:
            raise PreflightError(
                f"round {round_number} is not finalized yet; the latest finalized round is {max(last, 0)}"
            )
        else:
            ref = GlobalRef(sdk.round(round_number).global_model_cid, round_number)
        return GlobalRef(ref.cid, ref.round, sdk.address, session.chain_id)


@click.command("pull")
@click.option(
    "--round",
    "round_number",
    type=click.IntRange(min=0),
    help="Round whose global adapter to fetch (0: the initial model; default: the latest).",
)
@click.option("--cid", metavar="CID", help="Fetch this adapter CID directly (no chain needed).")
@click.option(
    "--out",
    "-o",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="PEFT adapter folder to write (default .flb/global/round-N).",
)
@click.option(
    "--merge",
    "merge_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also merge the adapter into the base model and save a ready-to-use model folder here.",
)
@click.option("--force", is_flag=True, help="Replace existing non-empty output folders.")
@store_option
@json_option
@pass_cli
def pull(
    cli: CLIContext,
    round_number: int | None,
    cid: str | None,
    out_dir: Path | None,
    merge_dir: Path | None,
    force: bool,
) -> None:
    """Download a global adapter by CID (verified), export it as a PEFT folder that
    `PeftModel.from_pretrained` loads, and with --merge save base model + adapter as one HF model."""
    from flb_dapp.cli.artifacts import (
        atomic_folder,
        check_base_model,
        check_writable_folder,
        fetch_adapter,
        open_store,
    )
    from flb_dapp.lora import export_peft

    out, settings = cli.output, cli.settings
    if cid is not None and round_number is not None:
        raise click.UsageError("give --round or --cid, not both")
    ref = GlobalRef(cid, None) if cid is not None else resolve_global(cli, round_number)
    name = f"round-{ref.round}" if ref.round is not None else ref.cid
    target = out_dir or Path(settings.cache_dir).expanduser().parent / "global" / name
    # Refuse occupied destinations before downloading or loading anything.
    check_writable_folder(target, force)
    if merge_dir is not None:
        check_writable_folder(merge_dir, force)
    with out.status(f"Fetching {ref.cid} ..."):
        adapter = fetch_adapter(open_store(settings.store), ref.cid)
    check_base_model(adapter, settings.task)
    provenance = {
        "cid": ref.cid,
        "round": ref.round,
        "contract": ref.contract,
        "chain_id": ref.chain_id,
        "base_model": adapter.metadata.base_model,
    }
    with atomic_folder(target, force) as tmp:
        export_peft(adapter, tmp)
        (tmp / "flb-global.json").write_text(json.dumps(provenance, indent=2) + "\n")
    out.success(f"Verified {ref.cid}; PEFT adapter folder: {target}")
    result = {**provenance, "adapter_folder": str(target), "merged_folder": None}
    if merge_dir is not None:
        from flb_dapp.cli.models import save_merged
        from flb_dapp.taskspec import model_path

        with out.status("Merging the adapter into the base model ..."):
            base = model_path(settings.task, settings.cache_dir)
            with atomic_folder(merge_dir, force) as tmp:
                save_merged(base, adapter, tmp)
                (tmp / "flb-global.json").write_text(json.dumps(provenance, indent=2) + "\n")
        out.success(f"Merged model (transformers' from_pretrained loads it): {merge_dir}")
        result["merged_folder"] = str(merge_dir)
    out.result(result, lambda: out.line(str(merge_dir or target)))
