"""`ape run deploy`: deploy FLB's reward token and coordinator, grant the oracle, fund the pool.

    ape run deploy --initial-model adapter.safetensors --store .flb/store
    ape run deploy --network http://127.0.0.1:8545 --initial-model-cid bafk... --oracle 0x...

Writes a deployment record (deployments/<chain id>.json) that the oracle, the API and `flb` read.
Re-running on a chain where the recorded coordinator exists says so instead of deploying again.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click
from ape.cli import ConnectedProviderCommand

from flb_dapp.chain.accounts import is_local_chain, load_account, read_password
from flb_dapp.chain.admission import ADMISSION_MODES, DEFAULT_EXIT_DELAY, AdmissionRules
from flb_dapp.chain.deployment import (
    DEFAULT_RECORD_DIR,
    DEFAULT_REVEAL_DURATION,
    TOKEN_DECIMALS,
    DeploymentRecord,
    deploy_system,
    existing_deployment,
    record_path,
)
from flb_dapp.chain.settlement import SettlementParameters
from flb_dapp.exceptions import FLBError


def _tokens(value: str) -> int:
    return int(Decimal(value) * TOKEN_DECIMALS)


@click.command(cls=ConnectedProviderCommand, short_help="Deploy the FLB contracts")
@click.option(
    "--account", default=None, help="Ape account alias of the deployer (default test:0 on local chains)."
)
@click.option(
    "--password-file", type=click.Path(dir_okay=False), help="File whose first line unlocks --account."
)
@click.option("--oracle", default=None, help="Address granted the oracle role (default: the deployer).")
@click.option(
    "--initial-model-cid", default=None, help="CID of the initial global adapter round 1 trains from."
)
@click.option(
    "--initial-model",
    type=click.Path(exists=True, dir_okay=False),
    help="Adapter file to store and use as the initial model.",
)
@click.option(
    "--store",
    default=".flb/store",
    show_default=True,
    help="Store (folder or Kubo RPC URL) for --initial-model.",
)
@click.option(
    "--round-duration",
    default=3600,
    show_default=True,
    help="Seconds each round's commit phase lasts at most.",
)
@click.option(
    "--reveal-duration",
    default=DEFAULT_REVEAL_DURATION,
    show_default=True,
    help="Seconds the reveal window lasts after the commit phase.",
)
@click.option(
    "--reward-per-round",
    default="1000",
    show_default=True,
    help="Reward tokens the oracle may allocate per round.",
)
@click.option(
    "--cohort-size",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**32 - 1),
    help="Clients sampled per round (0: every registered client trains every round).",
)
@click.option(
    "--admission",
    type=click.Choice(ADMISSION_MODES),
    default="open",
    show_default=True,
    help="Who may register: anyone (open) or the addresses a registrar admits (allowlist).",
)
@click.option(
    "--registration-bond",
    default="0",
    show_default=True,
    help="Reward tokens a client locks when it registers (returned after a clean exit).",
)
@click.option(
    "--client-exit-delay",
    default=DEFAULT_EXIT_DELAY,
    show_default=True,
    type=click.IntRange(0, 2**32 - 1),
    help="Seconds between a client's exit and its bond's return (a ban before then forfeits it).",
)
@click.option(
    "--settlement",
    "with_settlement",
    is_flag=True,
    help="Decide rounds optimistically: the oracle proposes, bonded verifiers attest or challenge.",
)
@click.option(
    "--quorum",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Settlement: attestations that decide a round.",
)
@click.option(
    "--challenge-window",
    default=86400,
    show_default=True,
    help="Settlement: seconds a proposal may be challenged.",
)
@click.option(
    "--resolution-period",
    default=86400,
    show_default=True,
    help="Settlement: seconds verifiers have to decide a challenge before the admin may.",
)
@click.option(
    "--exit-delay",
    default=604800,
    show_default=True,
    help="Settlement: seconds between asking to leave and withdrawing a bond.",
)
@click.option(
    "--finalizer-bond", default="10000", show_default=True, help="Settlement: tokens the oracle must bond."
)
@click.option(
    "--verifier-bond", default="1000", show_default=True, help="Settlement: tokens a verifier must bond."
)
@click.option(
    "--challenge-bond", default="1000", show_default=True, help="Settlement: tokens a challenge posts."
)
@click.option(
    "--slash-share",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Settlement: basis points of a slashed bond paid to the winner (the rest funds the pool).",
)
@click.option(
    "--token-supply", default="1000000", show_default=True, help="Reward tokens minted to the deployer."
)
@click.option("--fund", default=None, help="Reward tokens moved into the pool (default: 100 rounds' worth).")
@click.option(
    "--records", default=str(DEFAULT_RECORD_DIR), show_default=True, help="Folder of deployment records."
)
@click.option("--force", is_flag=True, help="Deploy even if a deployment exists on this chain.")
def cli(
    provider: object,
    account: str | None,
    password_file: str | None,
    oracle: str | None,
    initial_model_cid: str | None,
    initial_model: str | None,
    store: str,
    round_duration: int,
    reveal_duration: int,
    reward_per_round: str,
    cohort_size: int,
    admission: str,
    registration_bond: str,
    client_exit_delay: int,
    with_settlement: bool,
    quorum: int,
    challenge_window: int,
    resolution_period: int,
    exit_delay: int,
    finalizer_bond: str,
    verifier_bond: str,
    challenge_bond: str,
    slash_share: int,
    token_supply: str,
    fund: str | None,
    records: str,
    force: bool,
) -> None:
    """Deploy FLB to the selected network (Ape's embedded chain by default)."""
    from ape import chain

    try:
        path = record_path(chain.chain_id, records)
        existing = None if force else existing_deployment(path)
        if existing is not None:
            click.echo(
                f"FLB is already deployed on chain {existing.chain_id}: coordinator {existing.coordinator}, "
                f"token {existing.token} (block {existing.block}); record {path}. Use --force to deploy anew."
            )
            return
        if initial_model:
            from flb_dapp.storage.factory import open_store

            initial_model_cid = open_store(store).put_file(Path(initial_model))
            click.echo(f"stored initial model {initial_model} as {initial_model_cid} in {store}")
        if not initial_model_cid:
            raise click.UsageError("give --initial-model FILE or --initial-model-cid CID")
        # NOTE: a URL is not local by being a URL; test keys are public (flb_dapp.chain.accounts)
        name = account or ("test:0" if is_local_chain() else None)
        if name is None:
            raise click.UsageError("on a live network pass --account ALIAS (an Ape encrypted account)")
        deployer = load_account(name, read_password(password_file))
        record = deploy_system(
            deployer,
            initial_model_cid=initial_model_cid,
            oracle=oracle,
            round_duration=round_duration,
            reveal_duration=reveal_duration,
            reward_per_round=_tokens(reward_per_round),
            token_supply=_tokens(token_supply),
            fund_amount=_tokens(fund) if fund is not None else None,
            cohort_size=cohort_size,
            settlement=_settlement_rules(
                with_settlement,
                (finalizer_bond, verifier_bond, challenge_bond),
                (challenge_window, resolution_period, exit_delay, quorum, slash_share),
            ),
            admission=AdmissionRules(admission, _tokens(registration_bond), client_exit_delay),  # type: ignore[arg-type]
        )
    except FLBError as exc:
        raise click.ClickException(str(exc)) from exc
    record.save(path)
    _print_record(record, path, finalizer_bond)


def _settlement_rules(
    enabled: bool, bonds: tuple[str, str, str], rules: tuple[int, int, int, int, int]
) -> SettlementParameters | None:
    """The --settlement options (bonds in whole tokens) as the contract's parameters."""
    if not enabled:
        return None
    finalizer, verifier, challenge = (_tokens(bond) for bond in bonds)
    window, resolution, exit_delay, quorum, share = rules
    return SettlementParameters(finalizer, verifier, challenge, window, resolution, exit_delay, quorum, share)


def _print_record(record: DeploymentRecord, path: Path, finalizer_bond: str) -> None:
    click.echo(f"coordinator {record.coordinator}")
    click.echo(f"token       {record.token}")
    click.echo(f"oracle      {record.oracle}")
    if record.cohort_size:
        click.echo(f"cohort      {record.cohort_size} clients per round")
    bond = (
        f", bond {Decimal(record.registration_bond) / TOKEN_DECIMALS} tokens"
        if record.registration_bond
        else ""
    )
    click.echo(f"admission   {record.admission}{bond}")
    if record.settlement:
        click.echo(
            f"settlement  {record.settlement} (the oracle must bond {finalizer_bond} tokens to propose)"
        )
    click.echo(f"chain {record.chain_id}, block {record.block}; record written to {path}")
