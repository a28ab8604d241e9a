"""``flb train``: fine-tune the round's global adapter on the local data and save the update."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import account_option, data_option, json_option, store_option, train_options


@dataclass(frozen=True)
class RoundStart:
    """Where a client's round starts: the round number and the global adapter's CID."""

    round: int
    global_cid: str
    open: bool


def round_start(cli: CLIContext) -> RoundStart:
    """The open round and the global model it trains from, read from the chain."""
    from flb_dapp.cli.session import chain_session

    with chain_session(cli.settings, cli.verbose) as session:
        sdk = session.coordinator
        current = sdk.current_round
        is_open = sdk.now() < sdk.round(current).deadline and not sdk.paused
        return RoundStart(current, sdk.latest_global_model_cid, is_open)


def train_update(
    cli: CLIContext, start: RoundStart, address: str, kwargs: dict[str, Any], data: str
) -> tuple[Any, bytes]:
    """Fetch + verify the global adapter, train on ``data``; returns (TrainResult, encoded adapter)."""
    from flb_dapp.cli.artifacts import check_base_model, fetch_adapter, open_store
    from flb_dapp.cli.training import build_config, load_examples, options_from, run_training
    from flb_dapp.lora.codec import encode_adapter

    out, settings = cli.output, cli.settings
    options = options_from(kwargs)
    examples = load_examples(data)  # before any download: a wrong path fails at once
    with out.status(f"Fetching the global model {start.global_cid} ..."):
        global_adapter = fetch_adapter(open_store(settings.store), start.global_cid)
    check_base_model(global_adapter, settings.task)
    with out.status("Preparing the base model ..."):
        config = build_config(settings, options)
    result = run_training(out, config, examples, global_adapter, address, start.round)
    return result, encode_adapter(result.adapter)


@click.command("train")
@data_option("Training data: an MMLU-Pro-schema .json/.jsonl/.parquet file or a folder of them.")
@click.option(
    "--out",
    "-o",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save the adapter (default .flb/updates/round-N-ADDRESS.safetensors).",
)
@click.option(
    "--global-cid",
    metavar="CID",
    help="Train from this global adapter instead of the chain's current one (needs --round).",
)
@click.option(
    "--round",
    "round_number",
    type=click.IntRange(min=0),
    help="Round to label the update with when --global-cid is given.",
)
@train_options
@account_option
@store_option
@json_option
@pass_cli
def train(
    cli: CLIContext,
    data: Path | None,
    out_path: Path | None,
    global_cid: str | None,
    round_number: int | None,
    **kwargs: Any,
) -> None:
    """Fine-tune the current global adapter on your local data, with a progress bar, and save the
    trained adapter (safetensors) atomically. `flb submit` then publishes it."""
    from flb_dapp.cli.training import data_path, default_update_path, save_update
    from flb_dapp.storage.cid import cid_of_bytes
    from flb_dapp.wallet import account_address

    cli.use(data=str(data) if data else None)
    out, settings = cli.output, cli.settings
    path = data_path(settings)
    address = account_address(cli.account_name())
    if global_cid is not None:
        if round_number is None:
            raise click.UsageError("--global-cid needs --round N (the round the update is for)")
        start = RoundStart(round_number, global_cid, True)
    elif round_number is not None:
        raise click.UsageError("--round goes with --global-cid; otherwise the chain's open round is used")
    else:
        start = round_start(cli)
        if not start.open:
            out.warn(f"round {start.round} is closed; this update can only be submitted if it reopens")
    result, encoded = train_update(cli, start, address, kwargs, path)
    target = out_path or default_update_path(settings, start.round, address)
    save_update(target, encoded)
    metrics = {k: round(float(v), 6) for k, v in result.metrics.items()}
    out.success(f"Saved the round {start.round} update to {target}")
    data_out = {
        "adapter": str(target),
        "cid": cid_of_bytes(encoded),
        "round": start.round,
        "client": address,
        "num_samples": result.num_examples,
        "global_cid": start.global_cid,
        "metrics": metrics,
    }
    out.result(
        data_out,
        lambda: out.fields(
            {
                "adapter": str(target),
                "cid": data_out["cid"],
                "round": start.round,
                "examples": result.num_examples,
                "train loss": metrics.get("train_loss", "-"),
                "seconds": metrics.get("total_seconds", "-"),
            }
        ),
    )
