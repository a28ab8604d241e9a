"""``flb status``: where the federation stands and where you stand in it.

JSON shape (``--json``)::

    {"network", "chain_id", "contract", "token": {"address", "symbol", "decimals"},
     "round": {"current", "phase", "deadline", "deadline_utc", "seconds_left", "open",
               "reveal_deadline", "pending_reveals", "submissions", "active_clients", "paused"},
     "account": null | {"address", "registered", "banned", "dataset_commitment", "submissions",
                        "last_submitted_round", "committed_this_round", "submitted_this_round",
                        "token_balance", "exited", "bond", "bond_released_at"},
     "rewards": null | {"earned", "claimed", "claimable", "report_round", "report_cid"},
     "global_model": {"cid", "round", "metric", "epsilon", "report_cid", "metrics"},
     "report_error": ""}   # why the latest round report could not be read (store down ...), or ""

Amounts are integers in the token's smallest unit.
"""

from __future__ import annotations

import time
from typing import Any

import click

from flb_dapp.cli.context import CLIContext, pass_cli
from flb_dapp.cli.options import account_option, json_option, store_option
from flb_dapp.cli.output import Output, format_units


def _utc(timestamp: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _duration(seconds: int) -> str:
    minutes, secs = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def collect_status(cli: CLIContext, address: str | None) -> dict[str, Any]:
    """Everything `flb status` shows, as plain data."""
    from flb_dapp.cli.artifacts import open_store
    from flb_dapp.cli.rewards_view import latest_report
    from flb_dapp.cli.session import chain_session

    settings = cli.settings
    with chain_session(settings, cli.verbose) as session:
        sdk = session.coordinator
        token = sdk.token
        current = sdk.current_round
        info = sdk.round(current)
        now = sdk.now()
        data: dict[str, Any] = {
            "network": session.network,
            "chain_id": session.chain_id,
            "contract": sdk.address,
            "token": {
                "address": str(token.address),
                "symbol": str(token.symbol()),
                "decimals": int(token.decimals()),
            },
            "round": {
                "current": current,
                "phase": sdk.round_phase(current),  # commit, reveal or due
                "deadline": info.deadline,
                "deadline_utc": _utc(info.deadline),
                "seconds_left": max(0, info.deadline - now),
                "open": now < info.deadline and not sdk.paused,
                "reveal_deadline": info.reveal_deadline,
                "pending_reveals": info.pending_reveals,
                "submissions": info.submissions,
                "active_clients": sdk.active_clients,
                "paused": sdk.paused,
            },
            "account": None,
            "rewards": None,
        }
        report = latest_report(sdk, open_store(settings.store), strict=False)
        last = current - 1
        last_info = sdk.round(last) if last >= 1 else None
        data["report_error"] = report.error if report else ""
        data["global_model"] = {
            "cid": sdk.latest_global_model_cid,
            "round": last if last >= 1 else 0,
            "metric": last_info.metric if last_info else None,
            "epsilon": last_info.epsilon if last_info else None,
            "report_cid": last_info.report_cid if last_info else None,
            "metrics": report.metrics if report else {},
        }
        if address is not None:
            client = sdk.client(address)
            data["account"] = {
                "address": client.address,
                "registered": client.registered,
                "banned": client.banned,
                "dataset_commitment": client.dataset_commitment if client.registered else None,
                "submissions": client.submissions,
                "last_submitted_round": client.last_submitted_round,
                "committed_this_round": client.committed_round == current,
                "submitted_this_round": client.last_submitted_round == current,
                "token_balance": sdk.token_balance(client.address),
                "eth_balance": session.eth_balance(client.address),
                "exited": client.exited,
                **_bond(sdk, client.address),
            }
            earned = report.earned(client.address) if report else 0
            data["rewards"] = {
                "earned": earned,
                "claimed": client.claimed,
                "claimable": max(0, earned - client.claimed),
                "report_round": report.round if report else None,
                "report_cid": report.cid if report else None,
            }
    return data


def show(out: Output, data: dict[str, Any]) -> None:
    """The human view of :func:`collect_status`."""
    rnd, token, model = data["round"], data["token"], data["global_model"]
    if data["report_error"]:
        out.warn(f"cannot read the latest round report (metrics, rewards unknown): {data['report_error']}")
    symbol, decimals = token["symbol"], token["decimals"]
    if rnd["paused"]:
        state = "paused"
    elif rnd["open"]:
        state = f"open, closes in {_duration(rnd['seconds_left'])}"
    else:
        state = "closed, waiting for the oracle to finalize"
    out.fields(
        {
            "network": f"{data['network']} (chain {data['chain_id']})",
            "contract": data["contract"],
            "round": f"{rnd['current']} ({state})",
            "deadline": rnd["deadline_utc"],
            "submissions": f"{rnd['submissions']} of {rnd['active_clients']} active clients",
        }
    )
    out.line()
    metric = "-" if model["metric"] is None else f"{model['metric']:.4f}"
    model_fields = {
        "global model": model["cid"],
        "from round": model["round"] or "0 (initial model)",
        "accuracy": metric,
    }
    after = (model.get("metrics") or {}).get("after") or {}
    if after:
        before = (model.get("metrics") or {}).get("before") or {}
        model_fields["accuracy"] = (
            f"{after.get('accuracy', 0):.4f} (before the round: {before.get('accuracy', 0):.4f})"
        )
        model_fields["loss"] = f"{after.get('loss', 0):.4f}"
    if model["epsilon"]:
        model_fields["privacy spent"] = f"epsilon {model['epsilon']:.4g}"
    out.fields(model_fields)
    account, rewards = data["account"], data["rewards"]
    if account is None:
        out.line()
        out.line("(no account selected: pass --account ALIAS to see your registration and rewards)")
        return
    out.line()
    if account["exited"]:
        released = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(account["bond_released_at"]))
        registration = f"exited; bond released at {released} (`flb exit --withdraw` then)"
    elif account["registered"]:
        registration = f"yes, commitment {account['dataset_commitment']}"
    else:
        registration = "no (run `flb register --data PATH`)"
    if account["submitted_this_round"]:
        this_round = "yes (revealed)"
    elif account["committed_this_round"]:
        this_round = "committed, not revealed yet (run `flb reveal` in the reveal window)"
    else:
        this_round = "not yet"
    out.fields(
        {
            "account": account["address"],
            "registered": registration,
            "submitted this round": this_round,
            "submissions": account["submissions"],
            "ETH": format_units(account["eth_balance"]),
            symbol: format_units(account["token_balance"], decimals),
            **({"bond": f"{format_units(account['bond'], decimals)} {symbol}"} if account["bond"] else {}),
        }
    )
    out.line()
    earned = format_units(rewards["earned"], decimals)
    out.fields(
        {
            "rewards earned": f"{earned} {symbol}",
            "claimed": f"{format_units(rewards['claimed'], decimals)} {symbol}",
            "claimable": f"{format_units(rewards['claimable'], decimals)} {symbol}"
            + ("  (run `flb claim`)" if rewards["claimable"] else ""),
        }
    )


def _bond(sdk: Any, address: str) -> dict[str, int]:
    """The registration bond the account holds and when it is released (0 before an exit)."""
    bond = sdk.bond_of(address)
    return {"bond": bond.amount, "bond_released_at": bond.released_at}


@click.command("status")
@account_option
@click.option("--address", metavar="0xADDRESS", help="Show this address instead of an account of yours.")
@store_option
@json_option
@pass_cli
def status(cli: CLIContext, address: str | None) -> None:
    """Show the contract, the open round and its deadline, your registration and submissions, your
    rewards (earned, claimed, claimable) and the current global model with its metrics."""
    from flb_dapp.wallet import account_address

    if address is None and cli.settings.account:
        address = account_address(cli.account_name())
    if address is not None:
        from eth_utils import is_address, to_checksum_address

        if not is_address(address):
            raise click.BadParameter(f"{address!r} is not an Ethereum address", param_hint="--address")
        address = to_checksum_address(address)
    out = cli.output
    data = collect_status(cli, address)
    out.result(data, lambda: show(out, data))
